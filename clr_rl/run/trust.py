"""Trusted resume: checkpoints this user writes are signed, and verified before anything in them is unpickled.

A run's ``checkpoint/`` holds pickles: ``model.zip`` (SB3 cloudpickles parts of the model into it),
``vecnormalize.pkl`` and DQN's ``replay_buffer.pkl``. Loading a pickle runs whatever code it names, so
resuming a results folder someone else wrote (a clone, a shared disk, a download) would run their code.
As Jupyter signs notebooks, clr-rl signs each checkpoint it writes: an HMAC-SHA256, under a key only this
user can read, over the name and SHA-256 of every file in it, kept in ``checkpoint/signature.json``.
A resume first checks the signature; an unsigned or altered checkpoint is refused with one line saying
why and how to trust it explicitly (``--trust-checkpoints``), before any file in it is opened as a pickle.

The key is ``$XDG_CONFIG_HOME/clr-rl/key`` (default ``~/.config/clr-rl/key``), 32 random bytes made on
first use, mode 0600. Another user, or this user on another machine, has another key: their checkpoints
are not trusted here unless the flag says so.

>>> import tempfile, pathlib, os
>>> with tempfile.TemporaryDirectory() as tmp:
...     os.environ["XDG_CONFIG_HOME"] = tmp
...     folder = pathlib.Path(tmp, "checkpoint"); folder.mkdir()
...     _ = (folder / "model.zip").write_bytes(b"weights")
...     sign_checkpoint(folder)
...     verify_checkpoint(folder)                        # signed by this user: passes
...     _ = (folder / "model.zip").write_bytes(b"evil")
...     try:
...         verify_checkpoint(folder)
...     except UntrustedCheckpoint as exc:
...         print(str(exc).split(";")[0].split(": ", 1)[1])
model.zip changed after this user's clr-rl signed it
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from clr_rl.errors import StateError

__all__ = ["PICKLES", "SIGNATURE", "UntrustedCheckpoint", "key_path", "sign_checkpoint", "verify_checkpoint"]

SIGNATURE = "signature.json"
PICKLES = ("model.zip", "vecnormalize.pkl", "replay_buffer.pkl")
_DOMAIN = b"clr-rl checkpoint v1\n"


class UntrustedCheckpoint(StateError):
    """A checkpoint that this user's key did not sign, or that changed after it was signed."""


def key_path() -> Path:
    """Where this user's signing key lives: ``$XDG_CONFIG_HOME/clr-rl/key`` (default ``~/.config``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "clr-rl" / "key"


def _key(create: bool) -> bytes | None:
    """This user's key (made on first use when ``create``: written beside, then linked into place, so
    workers racing to make it all end up with the one that won)."""
    path = key_path()
    if not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _digests(folder: Path) -> dict[str, str]:
    """Relative name -> SHA-256 of every file under ``folder`` but the signature."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != SIGNATURE:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            out[path.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def _mac(key: bytes, digests: dict[str, str]) -> str:
    body = b"".join(f"{name}\0{digest}\n".encode() for name, digest in sorted(digests.items()))
    return hmac.new(key, _DOMAIN + body, hashlib.sha256).hexdigest()


def sign_checkpoint(folder: Path) -> None:
    """Write ``folder/signature.json``: each file's SHA-256 and the HMAC of them under this user's key."""
    from clr_rl.store import write_json_atomic

    folder = Path(folder)
    key = _key(create=True)
    assert key is not None
    digests = _digests(folder)
    write_json_atomic(folder / SIGNATURE, {"format": "clr-rl checkpoint signature v1", "algorithm": "HMAC-SHA256",
                                           "files": digests, "hmac": _mac(key, digests)})


def _refuse(folder: Path, why: str) -> UntrustedCheckpoint:
    return UntrustedCheckpoint(
        f"{folder}: {why}; its {', '.join(PICKLES)} are pickles, which run code when loaded, so clr-rl will not "
        "resume from it. If you trust whoever wrote this folder, rerun with --trust-checkpoints; otherwise delete "
        f"{folder} and that run trains again from the start")


def verify_checkpoint(folder: Path, *, trust: bool = False) -> None:
    """Pass when ``folder`` is signed by this user's key and unchanged since (or ``trust``); else raise
    :class:`UntrustedCheckpoint` saying why. Reads only bytes and JSON: nothing is unpickled."""
    if trust:
        return
    folder = Path(folder)
    sig_path = folder / SIGNATURE
    if not sig_path.is_file():
        raise _refuse(folder, "the checkpoint is not signed (written by another user, another machine, or a clr-rl "
                              "before checkpoints were signed)")
    try:
        sig = json.loads(sig_path.read_text())
        files, mac = dict(sig["files"]), str(sig["hmac"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _refuse(folder, f"{SIGNATURE} is not a clr-rl signature") from None
    key = _key(create=False)
    digests = _digests(folder)
    if key is None or not hmac.compare_digest(_mac(key, files), mac):
        raise _refuse(folder, f"the signature was not made with this user's key ({key_path()})")
    changed = sorted(n for n in set(files) | set(digests) if files.get(n) != digests.get(n))
    if changed:
        name = changed[0]
        what = "appeared" if name not in files else "disappeared" if name not in digests else "changed"
        raise _refuse(folder, f"{name} {what} after this user's clr-rl signed it")
