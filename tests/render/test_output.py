"""Writing a rendered file: atomic, only when changed, owner and mode kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from prodstate.render import output
from prodstate.render.output import write_atomically


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_perms_and_the_text(tmp_path: Path) -> None:
    path = tmp_path / "a.conf"
    assert write_atomically(str(path), b"one\n", 0o640)
    assert path.read_bytes() == b"one\n" and mode(path) == 0o640
    assert os.listdir(tmp_path) == ["a.conf"]  # no temporary file left


def test_unchanged_text_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "a.conf"
    path.write_bytes(b"same")
    inode = path.stat().st_ino
    assert not write_atomically(str(path), b"same", 0o644)
    assert path.stat().st_ino == inode


def test_a_changed_file_is_replaced_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.conf"
    path.write_bytes(b"old")
    path.chmod(0o600)
    inode = path.stat().st_ino
    assert write_atomically(str(path), b"new", 0o644)
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert path.stat().st_ino != inode  # renamed over, not rewritten in place


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_changed_file_keeps_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "a.conf"
    path.write_bytes(b"old")
    os.chown(path, 65534, 65534)
    assert write_atomically(str(path), b"new", 0o644)
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.conf"
    path.write_bytes(b"old")

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        write_atomically(str(path), b"new", 0o644)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.conf"]


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "no" / "a.conf"), b"x", 0o644)
