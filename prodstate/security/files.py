"""Who else may read or replace a file holding secrets (redis.conf keeps ``masterauth``)."""

from __future__ import annotations

import os
import stat


def file_mode(path: str) -> int | None:
    """The permission bits of ``path``; None if it cannot be seen from here (another
    machine's or container's file)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def writable_by_others(directory: str) -> str:
    """Why others than its owner may replace files in ``directory`` ("" if they may not, or
    it cannot be seen from here): it is group- or world-writable."""
    try:
        info = os.stat(directory)
    except OSError:
        return ""
    mode = stat.S_IMODE(info.st_mode)
    if not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return ""
    return f"{directory} is writable by group or others (mode {mode:o})"
