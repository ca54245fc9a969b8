"""The renderer: templates rendered from the local Redis when its data changed, debounced,
gated on its state, written atomically, each change followed by the template's command.

Each effect (a file written, a command run) is logged with its reason; so is each render
refused, once per reason, with the file kept as it was.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import redis

from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.render import command as commands
from prodstate.render.config import TemplateSpec
from prodstate.render.debounce import Debounce
from prodstate.render.gate import SourceState, notifications_missing, refusal, same_data
from prodstate.render.metrics import RenderMetrics
from prodstate.render.output import current_content, write_atomically
from prodstate.render.source import Source
from prodstate.render.templates import DataView, Template, TemplateError

log = logging.getLogger(__name__)

#: Times a render is tried again when data replicated while it read (before giving up
#: until the next wake).
ATTEMPTS = 3
#: Seconds before a refused render is tried again.
RETRY = 0.5


@dataclass
class Job:
    """One template and its pending changes."""

    spec: TemplateSpec
    template: Template
    debounce: Debounce = field(init=False)
    #: Renders since start (written or unchanged), and files written.
    renders: int = 0
    writes: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        self.debounce = Debounce(self.spec.wait)


class Renderer:
    """Renders ``jobs`` from ``source``; :meth:`once` or :meth:`run` until stopped."""

    def __init__(
        self,
        jobs: list[Job],
        source: Source,
        *,
        max_staleness: float,
        interval: float = 60.0,
        dry_run: bool = False,
        out: TextIO = sys.stdout,
        metrics: RenderMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.source = source
        self.max_staleness = max_staleness
        self.interval = interval
        self.dry_run = dry_run
        self.out = out
        self.metrics = metrics or RenderMetrics()
        self.clock = clock
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._changes: list[float] = []
        self._refused = ""
        self._retry_at: float | None = None
        #: The heartbeat's age at the last render (None before one).
        self._age: float | None = None
        self._warned_silent = False
        #: Why the pending renders are due (logged with each file written).
        self._why = "start"

    # -- changes -------------------------------------------------------------------

    def changed(self, key: str | None) -> None:
        """A key changed in the local Redis (None: unknown keys). Called from the
        subscriber's thread; the heartbeat's own changes are not data changes."""
        if key == HEARTBEAT_KEY:
            return
        with self._lock:
            self._changes.append(self.clock())
        self._wake.set()

    def _take_changes(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        if changes:
            self._why = "data changed"
            for job in self.jobs:
                # The burst's first change is the first of these if none was pending.
                debounce = job.debounce.changed(changes[0])
                job.debounce = debounce.changed(changes[-1], len(changes) - 1)

    def mark_all(self, now: float, why: str) -> None:
        """Every template is to be rendered (at start, and as the periodic safety net)."""
        self._why = why
        for job in self.jobs:
            job.debounce = job.debounce.changed(now)

    # -- rendering -----------------------------------------------------------------

    def render(self, jobs: list[Job], why: str) -> bool:
        """Render ``jobs`` from one consistent reading of the data; False if the local
        Redis may not be rendered from now (files kept, jobs left pending)."""
        for _attempt in range(ATTEMPTS):
            before = self.source.state()
            refused = refusal(before, self.max_staleness)
            if refused:
                self._refuse(refused)
                return False
            texts = {id(job): self._render_text(job) for job in jobs}
            after = self.source.offset()
            if after.reachable and not after.loading and same_data(before, after):
                break
        else:
            self._refuse("data kept changing while it was read; trying again")
            return False
        self._age = before.age
        if self._refused:
            log.info(
                "rendering again: the local Redis may be rendered from",
                extra={"was": self._refused},
            )
            self._refused = ""
        for job in jobs:
            text, error = texts[id(job)]
            if text is None:
                self._failed(job, error)
            else:
                self._write(job, text, before, why)
            job.debounce = job.debounce.rendered()
        return True

    def _render_text(self, job: Job) -> tuple[str | None, str]:
        """The template's text, or None and why it failed."""
        try:
            return job.template.render(DataView(self.source.conn)), ""
        except TemplateError as exc:
            return None, f"template error: {exc}"
        except (redis.RedisError, OSError) as exc:
            return None, f"cannot read the local Redis: {' '.join(str(exc).split())}"

    def _write(self, job: Job, text: str, state: SourceState, why: str) -> None:
        name = job.spec.name
        content = text.encode()
        if self.dry_run:
            changed = current_content(job.spec.destination) != content
            self.out.write(f"> {name} ({'changed' if changed else 'unchanged'})\n{text}")
            self.out.flush()
            return
        try:
            wrote = write_atomically(job.spec.destination, content, job.spec.perms)
        except OSError as exc:
            self._failed(job, f"cannot write {name}: {exc.strerror or exc}")
            return
        job.renders += 1
        self.metrics.rendered(name, state.age or 0.0, wrote)
        if not wrote:
            log.debug("rendered, unchanged", extra={"template": name})
            return
        job.writes += 1
        age = "?" if state.age is None else f"{state.age:.1f}s"
        log.info(
            "wrote the file: its text changed",
            extra={"template": name, "bytes": len(content), "why": why, "data_age": age},
        )
        if job.spec.command:
            self._run_command(job)

    def _run_command(self, job: Job) -> None:
        spec = job.spec
        outcome = commands.run(
            spec.command, spec.command_timeout, {"PRODSTATE_DESTINATION": spec.destination}
        )
        self.metrics.commands.labels(spec.name, "ok" if outcome.ok else "failed").inc()
        extra = {"template": spec.name, "command": spec.command, "outcome": outcome.describe()}
        if outcome.output:
            extra["output"] = outcome.output
        if outcome.ok:
            log.info("ran the command: the file changed", extra=extra)
        else:
            log.warning("the command failed after the file changed", extra=extra)

    def _failed(self, job: Job, message: str) -> None:
        job.failures += 1
        self.metrics.failures.labels(job.spec.name).inc()
        log.error(message, extra={"template": job.spec.name})

    def _refuse(self, reason: str) -> None:
        self.metrics.refusals.inc()
        self._retry_at = self.clock() + RETRY
        kind = reason.split(":")[0]
        if kind != self._refused.split(":")[0]:
            log.warning("not rendering, files kept: " + reason)
        self._refused = reason

    # -- modes ---------------------------------------------------------------------

    def once(self) -> bool:
        """Render every template now; True if every one was rendered."""
        if not self.render(self.jobs, "--once"):
            return False
        return all(job.failures == 0 for job in self.jobs)

    def cycle(self, now: float) -> float:
        """Render what is due at ``now``; the monotonic time to wake up next."""
        self._take_changes()
        due = [job for job in self.jobs if job.debounce.due(now)]
        waiting = self._retry_at is not None and now < self._retry_at
        if due and not waiting:
            self._retry_at = None
            self.render(due, self._why)
        times = [at for job in self.jobs if (at := job.debounce.due_at()) is not None]
        if self._retry_at is not None:
            times = [max(t, self._retry_at) for t in times]
        return min(times, default=now + self.interval)

    def _check_notifications(self, started: float, now: float, last: float | None) -> None:
        silent = notifications_missing(last, started, now, self._age, self.interval)
        if silent and not self._warned_silent:
            log.warning(
                "no keyspace notification arrives although the heartbeat advances: the local "
                "Redis's notify-keyspace-events lacks K and A (its agent sets them); changes "
                "are rendered only every --interval",
                extra={"interval": self.interval},
            )
        elif not silent and self._warned_silent:
            log.info("keyspace notifications arrive again")
        self._warned_silent = silent

    def wake(self) -> None:
        """Wake :meth:`run` (to see its stop event)."""
        self._wake.set()

    def run(
        self,
        stop: threading.Event,
        subscribed: Callable[[], bool] = lambda: True,
        last_event: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Render at start, then after every change (debounced) and every ``interval``
        seconds, until ``stop`` is set. ``subscribed`` and ``last_event`` tell whether the
        keyspace notifications are subscribed to, and when one last arrived."""
        started = now = self.clock()
        self.mark_all(now, "start")
        periodic = now + self.interval
        while not stop.is_set():
            now = self.clock()
            if now >= periodic:
                self.mark_all(now, "periodic re-render")
                periodic = now + self.interval
                self._check_notifications(started, now, last_event())
            self.metrics.notifications.set(1 if subscribed() else 0)
            wake = min(self.cycle(self.clock()), periodic)
            timeout = max(0.0, wake - self.clock())
            if self._wake.wait(timeout):
                self._wake.clear()
            if stop.is_set():
                break
