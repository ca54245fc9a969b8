"""Writing a rendered file: atomically, only when it changed, keeping its owner and mode."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile


def current_content(path: str) -> bytes | None:
    """The file's bytes (None if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomically(path: str, content: bytes, perms: int) -> bool:
    """Make ``path`` hold ``content``; return False if it already did (nothing written).

    The new text goes to a temporary file in the same directory, flushed to disk with the
    existing file's mode and owner (``perms`` for a new file), then renamed over the
    destination: a reader sees the old file or the new one, never a partial one.
    """
    if current_content(path) == content:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    try:
        existing: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        existing = None
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            mode = stat.S_IMODE(existing.st_mode) if existing else perms
            os.fchmod(handle.fileno(), mode)
            if existing and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), existing.st_uid, existing.st_gid)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)
    return True


def _sync_directory(directory: str) -> None:
    """Flush the rename to disk (where the filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
