"""Atomic file writes: a crash or an error never leaves a truncated file behind.

The text goes to a temporary file in the target's folder (so the final rename
stays on one file system), is flushed to disk, and only then replaces the
target with `os.replace`, which is atomic on POSIX and Windows.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], text: str | bytes) -> Path:
    """Write `text` (str as UTF-8, newlines as given; or bytes) to `path`; the old file survives any failure.

    A symbolic link is written through (its target is replaced, the link kept); a device or
    a pipe (`-o /dev/stdout`, a FIFO) cannot be replaced, so it is written to directly.
    """
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name to write")
    if path.exists() and not path.is_file():
        with open(path, "wb") as f:
            f.write(data)
        return path
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder to write {path.name} in")
    # A short name, so that a file name near the system's limit still has room for its temporary.
    tmp = path.with_name(f".sd-{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never follow or reuse someone else's file; 0o666 lets the umask decide, as open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
