"""The agent's saved ZooKeeper session: private, locked, and ignored when it is not ours."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from prodstate.zk.session import SavedSession, SessionFile, SessionFileError

SAVED = SavedSession(0x1234ABCD, b"\x01" * 16, "n_" + "a" * 32 + "_")


def test_a_saved_session_is_read_back_by_the_next_process(tmp_path):
    first = SessionFile(tmp_path / "state", "c1", "n1")
    assert first.open() is None
    first.save(SAVED)
    first.close()
    mode = stat.S_IMODE(os.stat(first.path).st_mode)
    assert mode == 0o600 and stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    second = SessionFile(tmp_path / "state", "c1", "n1")
    assert second.open() == SAVED
    second.forget()
    second.close()
    assert SessionFile(tmp_path / "state", "c1", "n1").open() is None


def test_another_process_holding_the_lock_is_refused(tmp_path):
    held = SessionFile(tmp_path, "c1", "n1")
    held.open()
    code = (
        "import sys\nfrom prodstate.zk.session import SessionFile, SessionFileError\n"
        f"try:\n    SessionFile({str(tmp_path)!r}, 'c1', 'n1').open()\n"
        "except SessionFileError as exc:\n    print(exc); sys.exit(7)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 7, out.stderr
    assert "another agent for node n1 of cluster c1 is running" in out.stdout
    held.close()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_other_nodes_are_independent(tmp_path):
    one = SessionFile(tmp_path, "c1", "n1")
    one.open()
    one.save(SAVED)
    other = SessionFile(tmp_path, "c1", "n2")
    assert other.open() is None


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"cluster": "c1", "node_id": "n1"}',
        b'{"cluster": "c1", "node_id": "n1", "session_id": 1, "password": "zz", '
        b'"election_prefix": "n_x_"}',
    ],
)
def test_a_malformed_file_is_ignored_not_fatal(tmp_path, content):
    f = SessionFile(tmp_path, "c1", "n1")
    f.path.write_bytes(content)
    assert f.open() is None


def test_a_file_copied_from_another_node_is_ignored(tmp_path):
    f = SessionFile(tmp_path, "c1", "n1")
    doc = {"cluster": "c1", "node_id": "n9", "session_id": 5, "password": "00" * 16}
    f.path.write_text(json.dumps({**doc, "election_prefix": "n_x_"}))
    assert f.open() is None


def test_a_directory_others_may_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SessionFileError, match="writable by group or others"):
        SessionFile(shared, "c1", "n1").open()


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SessionFileError, match="cannot use state directory"):
        SessionFile(blocker / "state", "c1", "n1").open()
