"""The deploy log: a capped stream of deploy starts and outcomes, merged into deploys and
searched by service, machine, version and time. Everything here but the writes is pure."""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prodstate.statedb.keys import (
    COMMAND_MAX,
    DEPLOY_OUTPUT,
    DEPLOY_OUTPUT_MAX,
    DEPLOYS,
    DEPLOYS_MAX,
    SERVICES,
    TAIL_MAX,
    capped_xadd,
    clip,
    dumps,
    loads,
    stream_time,
)

#: Lines of a deploy's output kept in its record (and at most TAIL_MAX characters).
TAIL_LINES = 50


class OutputTail:
    """The last lines of a command's output, bounded in lines and characters."""

    def __init__(self, lines: int = TAIL_LINES, chars: int = TAIL_MAX) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self.chars = chars

    def add(self, line: str) -> None:
        """Keep ``line`` (overlong lines cut to the character bound)."""
        self._lines.append(line.rstrip("\n")[: self.chars])

    def text(self) -> str:
        """The kept lines, the oldest dropped first when over the character bound."""
        text = "\n".join(self._lines)
        return text[-self.chars :] if len(text) > self.chars else text


def signal_name(number: int) -> str:
    """``SIGTERM`` for 15 (``signal 64`` for one without a name)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Outcome:
    """How a deploy's command ended: ``returncode`` as :mod:`subprocess` gives it (``-N``
    when killed by signal N), and the signal ``prodstate deploy`` received and passed on
    to it, if any (the deploy was then aborted, whatever the command did of it)."""

    returncode: int
    interrupted_by: int | None = None

    @property
    def name(self) -> str:
        """``succeeded``, ``failed``, ``killed`` (by a signal nobody sent through the
        deploy) or ``aborted``."""
        if self.interrupted_by is not None:
            return "aborted"
        if self.returncode < 0:
            return "killed"
        return "succeeded" if self.returncode == 0 else "failed"

    @property
    def exit_code(self) -> int | None:
        """The command's exit status (None when a signal killed it)."""
        return self.returncode if self.returncode >= 0 else None

    @property
    def signal(self) -> int | None:
        """The signal that aborted the deploy or killed its command (None: neither)."""
        return self.interrupted_by or (-self.returncode if self.returncode < 0 else None)

    @property
    def shell_status(self) -> int:
        """``prodstate deploy``'s exit status, as a shell gives it: the command's, or 128
        plus the signal that killed it."""
        return self.returncode if self.returncode >= 0 else 128 - self.returncode


@dataclass
class Deploy:
    """One deploy as its start and outcome entries describe it."""

    id: str
    service: str
    version: str
    targets: list[str]
    who: str
    host: str
    started_at: float
    outcome: str = "running"
    exit_code: int | None = None
    signal: int | None = None
    finished_at: float | None = None
    output: str = ""
    command: str = ""
    entries: list[str] = field(default_factory=list)

    def describe_outcome(self) -> str:
        """``succeeded``, ``failed (exit 3)``, ``killed (SIGKILL)``, ``aborted (SIGINT)``,
        ``abandoned``, ``running``."""
        if self.outcome == "failed" and self.exit_code is not None:
            return f"failed (exit {self.exit_code})"
        if self.outcome in ("killed", "aborted") and self.signal is not None:
            return f"{self.outcome} ({signal_name(self.signal)})"
        return self.outcome

    def started_record(self) -> bytes:
        """What the deploy's start says of it, as JSON (kept in ZooKeeper while it runs)."""
        fields = ("id", "service", "version", "targets", "who", "host", "started_at")
        return dumps({name: getattr(self, name) for name in fields}).encode()

    @classmethod
    def from_started_record(cls, raw: bytes) -> Deploy | None:
        """The deploy a :meth:`started_record` describes (None if it does not parse)."""
        doc = loads(raw.decode(errors="replace"))
        try:
            return cls(
                id=str(doc["id"]),
                service=str(doc["service"]),
                version=str(doc["version"]),
                targets=[str(t) for t in doc["targets"]],
                who=str(doc["who"]),
                host=str(doc["host"]),
                started_at=float(doc["started_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_dict(self) -> dict[str, Any]:
        """The deploy as a JSON-able dict (without its stream entry ids)."""
        doc = dict(vars(self))
        doc.pop("entries")
        return doc


def start_entry(
    deploy_id: str,
    service: str,
    version: str,
    targets: Sequence[str],
    who: str,
    host: str,
    command: str,
) -> tuple[Any, ...]:
    """The XADD that records a deploy's start."""
    fields = {
        "id": deploy_id,
        "phase": "started",
        "service": service,
        "version": version,
        "targets": " ".join(targets),
        "who": who,
        "host": host,
        "command": clip(command, COMMAND_MAX),
    }
    return capped_xadd(DEPLOYS, DEPLOYS_MAX, fields)


def finish_commands(
    deploy: Deploy, outcome: Outcome, output: str, finished_at: float
) -> list[tuple[Any, ...]]:
    """The writes that record a deploy's outcome, its output tail (kept for fewer deploys
    than the log), and on success the service's current version."""
    fields = {
        **_identity(deploy),
        "outcome": outcome.name,
        "exit_code": "" if outcome.exit_code is None else outcome.exit_code,
        "signal": outcome.signal or "",
    }
    tail = {"id": deploy.id, "output": output[-TAIL_MAX:]}
    commands: list[tuple[Any, ...]] = [
        capped_xadd(DEPLOYS, DEPLOYS_MAX, fields),
        capped_xadd(DEPLOY_OUTPUT, DEPLOY_OUTPUT_MAX, tail),
    ]
    if outcome.name == "succeeded":
        current = {
            "version": deploy.version,
            "deployed_at": finished_at,
            "deployed_by": deploy.who,
            "deploy": deploy.id,
            "targets": deploy.targets,
        }
        commands.append(("HSET", SERVICES, deploy.service, dumps(current)))
    return commands


def abandon_command(deploy: Deploy) -> tuple[Any, ...]:
    """The write that records ``deploy`` as abandoned: it never recorded an outcome, and
    its deploy process no longer holds the service's deploy lock (it died: a machine
    crash, or SIGKILL, whose command its supervisor ended)."""
    return capped_xadd(DEPLOYS, DEPLOYS_MAX, {**_identity(deploy), "outcome": "abandoned"})


def _identity(deploy: Deploy) -> dict[str, Any]:
    """What an outcome entry repeats of its start (not the targets: the start entry holds
    them, and the service's record those of its current version)."""
    return {
        "id": deploy.id,
        "phase": "finished",
        "service": deploy.service,
        "version": deploy.version,
        "who": deploy.who,
        "host": deploy.host,
    }


def merge_entries(
    entries: Iterable[tuple[str, dict[str, str]]],
    outputs: Iterable[tuple[str, dict[str, str]]] = (),
) -> list[Deploy]:
    """Deploys from log entries (any order) and output entries, newest start first.

    A deploy whose start entry was trimmed away is rebuilt from its outcome entry; one
    whose output entry was trimmed away has no output.
    """
    tails = {f.get("id", ""): f.get("output", "") for _, f in outputs}
    deploys: dict[str, Deploy] = {}
    for entry_id, fields in sorted(entries, key=lambda e: _id_key(e[0])):
        key = fields.get("id") or entry_id
        at = stream_time(entry_id)
        deploy = deploys.get(key)
        if deploy is None:
            deploy = deploys[key] = Deploy(
                id=key,
                service=fields.get("service", ""),
                version=fields.get("version", ""),
                targets=fields.get("targets", "").split(),
                who=fields.get("who", ""),
                host=fields.get("host", ""),
                started_at=at,
                command=fields.get("command", ""),
            )
        deploy.entries.append(entry_id)
        if fields.get("phase") == "finished":
            deploy.outcome = fields.get("outcome", "failed")
            deploy.finished_at = at
            deploy.output = tails.get(key, "")
            deploy.exit_code = _number(fields.get("exit_code", ""))
            deploy.signal = _number(fields.get("signal", ""))
    return sorted(deploys.values(), key=lambda d: d.started_at, reverse=True)


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class DeploySearch:
    """What to look for in the log; every set criterion must match."""

    service: str | None = None
    machine: str | None = None
    version: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None

    def matches(self, deploy: Deploy) -> bool:
        """True if ``deploy`` meets every criterion (machine: a target or where it ran)."""
        if self.service and deploy.service != self.service:
            return False
        if self.machine and self.machine not in (*deploy.targets, deploy.host):
            return False
        if self.version and deploy.version != self.version:
            return False
        if self.since is not None and deploy.started_at < self.since:
            return False
        if self.until is not None and deploy.started_at > self.until:
            return False
        if self.text:
            haystack = f"{deploy.command}\n{deploy.output}\n{deploy.who}".lower()
            if self.text.lower() not in haystack:
                return False
        return True

    def stream_range(self) -> tuple[str, str]:
        """XREVRANGE bounds (max, min) covering the time range, with a day of slack at the
        end for outcomes recorded after their start."""
        high = "+" if self.until is None else str(int((self.until + 86400) * 1000))
        low = "-" if self.since is None else str(int(self.since * 1000))
        return high, low


def search(
    entries: Iterable[tuple[str, dict[str, str]]],
    query: DeploySearch,
    outputs: Iterable[tuple[str, dict[str, str]]] = (),
) -> list[Deploy]:
    """The deploys in ``entries`` (with ``outputs``) that match ``query``, newest first."""
    return [d for d in merge_entries(entries, outputs) if query.matches(d)]
