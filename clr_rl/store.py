"""Files on disk: atomic writes and the run folder's layout.

A run folder holds ``run.json`` (config, status, metrics), ``evaluations.csv``,
the TensorBoard event files, ``model.zip`` (and ``vecnormalize.pkl``), and while
training a ``checkpoint/`` folder. Every JSON write is atomic (temp file + rename),
so a ``kill -9`` leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError, StateError

__all__ = ["EVAL_COLUMNS", "append_eval_row", "check_folders", "check_writable", "read_evaluations", "read_json",
           "read_json_checked", "write_csv_atomic", "write_evaluations", "write_json_atomic", "write_text_atomic"]

EVAL_COLUMNS = ("timesteps", "mean_return", "std_return", "episodes", "wall_seconds")


def check_writable(out: Path) -> None:
    """``--out`` must be a folder or creatable below a writable folder (checked before any write)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={str(out)!r} exists and is not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"out={str(out)!r} cannot be created: {str(parent)!r} is not a folder (not writable)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"out={str(out)!r} cannot be written: {str(parent)!r} is not writable")


def check_folders(out: Path, folders: list[str]) -> None:
    """Every folder a batch will write below ``out`` (``runs/<env>/<arm>/seed0``, ``tune/...``) can be a
    folder: no part of its path that exists is a file (checked before anything is written)."""
    seen: set[Path] = set()
    for rel in folders:
        path = out
        for part in Path(rel).parts:
            path = path / part
            if path in seen:
                continue
            seen.add(path)
            if not path.exists():
                break
            if not path.is_dir():
                raise ConfigError(f"{str(path)!r} is a file, but the batch needs a folder there (for {rel}); move "
                                  "it away or pick another --out")


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it, not mkstemp's private 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_json_checked(path: Path, recover: str) -> Any:
    """``path``'s JSON; a file that is not valid JSON (truncated, edited) is a :class:`StateError`
    naming the file and ``recover``, the way out."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"{path} is not valid JSON ({type(exc).__name__}: {exc}); {recover}") from None


def write_csv_atomic(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """A CSV file with a header, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def write_evaluations(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv_atomic(path, EVAL_COLUMNS, rows)


def append_eval_row(path: Path, row: dict[str, Any]) -> None:
    """Append one evaluation row (one short write: a crash loses at most this row)."""
    line = io.StringIO()
    csv.DictWriter(line, fieldnames=EVAL_COLUMNS, lineterminator="\n").writerow(row)
    with open(path, "a") as fh:
        fh.write(line.getvalue())


def read_evaluations(path: Path) -> list[dict[str, float]]:
    """Rows of ``evaluations.csv`` as numbers; a torn last line is ignored."""
    if not path.is_file():
        return []
    rows = []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            try:
                rows.append({k: float(row[k]) for k in EVAL_COLUMNS})
            except (TypeError, ValueError, KeyError):
                continue
    return rows
