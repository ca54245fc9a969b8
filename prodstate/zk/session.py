"""The ZooKeeper session an agent resumes after a restart (its private state file).

A ZooKeeper session outlives its client's process for the session timeout. An agent that
crashed, or stopped to be upgraded, and starts again within it takes the same session
back (kazoo's ``client_id``): its member, election and root znodes never went away, so a
restarted root keeps its epoch and no leaf moves.

Two processes must never share a session (both would act as the one node), so the agent
holds an exclusive lock on ``<cluster>.<node>.lock`` in the state directory for as long
as it runs; a second agent for the same node refuses to start. The session id and
password (as secret as the ZooKeeper credentials: whoever holds them acts as this node)
are written to ``<cluster>.<node>.session``, mode 0600, by an atomic rename. A file that
does not parse, or names another cluster or node, is ignored, and ZooKeeper answers a
session that has expired (or is another ensemble's) as expired: either way the agent
starts a new session, as without one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prodstate.security.files import writable_by_others

log = logging.getLogger(__name__)


class SessionFileError(Exception):
    """The state directory cannot be used, or another agent holds it for this node."""


@dataclass(frozen=True)
class SavedSession:
    """A session this agent's previous process held."""

    session_id: int
    password: bytes
    #: The name of that process's election znodes before their sequence.
    election_prefix: str


class SessionFile:
    """This node's session file and lock in ``directory``; ``open()`` takes the lock."""

    def __init__(self, directory: str | Path, cluster: str, node_id: str) -> None:
        self.directory = Path(directory)
        self.cluster, self.node_id = cluster, node_id
        name = f"{cluster}.{node_id}"
        self.path = self.directory / f"{name}.session"
        self.lock_path = self.directory / f"{name}.lock"
        self._lock_fd: int | None = None

    def open(self) -> SavedSession | None:
        """Lock this node's state and return the session saved there, if any.
        SessionFileError if another process holds it, or the directory cannot be made,
        or others than its owner may replace files in it."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SessionFileError(
                f"cannot use state directory {self.directory}: {exc.strerror}"
            ) from None
        unsafe = writable_by_others(str(self.directory))
        if unsafe:
            os.close(fd)
            raise SessionFileError(f"state directory unsafe: {unsafe}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise SessionFileError(
                    f"another agent for node {self.node_id} of cluster {self.cluster} is "
                    f"running (it holds {self.lock_path})"
                ) from None
            raise SessionFileError(f"cannot lock {self.lock_path}: {exc.strerror}") from None
        self._lock_fd = fd
        return self._load()

    def close(self) -> None:
        """Release the lock (the session file stays for the next process)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load(self) -> SavedSession | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            extra = {"path": str(self.path), "error": exc.strerror}
            log.warning("cannot read the saved session: starting a new one", extra=extra)
            return None
        try:
            doc = json.loads(raw)
            mine = (doc["cluster"], doc["node_id"]) == (self.cluster, self.node_id)
            saved = SavedSession(
                int(doc["session_id"]), bytes.fromhex(doc["password"]), str(doc["election_prefix"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            extra = {"path": str(self.path), "error": repr(exc)}
            log.warning("ignoring a malformed saved session: starting a new one", extra=extra)
            return None
        if not mine:
            extra = {"path": str(self.path)}
            log.info("the saved session is another node's: starting a new one", extra=extra)
            return None
        return saved

    def save(self, session: SavedSession) -> None:
        """Write ``session`` for the next process (atomically, mode 0600); OSError if the
        disk refuses (the agent runs on, and a restart then starts a new session)."""
        doc = {
            "cluster": self.cluster,
            "node_id": self.node_id,
            "session_id": session.session_id,
            "password": session.password.hex(),
            "election_prefix": session.election_prefix,
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp makes it 0600
                json.dump(doc, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def forget(self) -> None:
        """Remove the saved session (the agent closed it: there is nothing to resume)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
