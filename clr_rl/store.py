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

from clr_rl.errors import ConfigError

__all__ = ["EVAL_COLUMNS", "append_eval_row", "check_writable", "read_evaluations", "read_json", "write_csv_atomic",
           "write_evaluations", "write_json_atomic", "write_text_atomic"]

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


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
