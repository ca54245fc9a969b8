"""Which processes ran, and which waited for a CPU, between two moments: read from /proc.

Every task (thread) of every process has ``/proc/PID/task/TID/schedstat``: the nanoseconds it
has run on a CPU, the nanoseconds it has waited on a run queue while runnable, and its
timeslices (the kernel's ``sched_info``, which needs no schedstats switch). A ``Sampler``
keeps each task's file open and re-reads it with ``pread``, a few microseconds a task, so a
snapshot of every task on the machine costs milliseconds; two snapshots give each process's
CPU and run-queue wait between them, to the nanosecond and for all its threads. ``/proc/stat``
adds the machine's busy and steal time (in clock ticks; steal: a hypervisor's share).

The pure part (``process_usage``, ``attribute``) takes readings as dicts, so it is tested
without any process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: (pid, tid) -> (ns on a CPU, ns runnable and waiting for one), both cumulative.
Reading = Mapping[tuple[int, int], tuple[int, int]]

SAMPLER = 0  # pseudo pid of the sampler's own reading (pid 0 is never a process in /proc)
#: The groups every sampler has: its own readings, the rest of this process, the unnamed.
SAMPLER_GROUP, OWN_GROUP, OTHER = "sampler", "benchmark", "other"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """Seconds on a CPU and seconds runnable but waiting for one."""

    cpu: float = 0.0
    wait: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.wait + other.wait)


@dataclass(frozen=True)
class Window:
    """What ran in one interval: by group, the busiest processes, steal."""

    seconds: float
    groups: dict[str, Usage]
    top: list[tuple[str, Usage]]  # (process label, usage), most CPU first
    steal: float = 0.0  # seconds of CPU the hypervisor took (clock-tick resolution)
    busy: float = 0.0  # seconds the CPUs were busy by /proc/stat (clock-tick resolution)

    @property
    def runnable(self) -> float:
        """Mean number of tasks running or waiting to run over the window."""
        total = sum(self.groups.values(), Usage())
        return (total.cpu + total.wait) / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "steal": self.steal,
            "busy": self.busy,
            "groups": {g: [u.cpu, u.wait] for g, u in self.groups.items()},
            "top": [[label, u.cpu, u.wait] for label, u in self.top],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        """A window from ``as_json``'s dict."""
        return cls(
            data["seconds"],
            {g: Usage(cpu, wait) for g, (cpu, wait) in data["groups"].items()},
            [(label, Usage(cpu, wait)) for label, cpu, wait in data["top"]],
            data["steal"],
            data["busy"],
        )


def parse_schedstat(data: bytes) -> tuple[int, int]:
    """Run and wait nanoseconds from a ``schedstat`` file's text."""
    run, wait, _ = data.split()
    return int(run), int(wait)


def parse_stat(data: bytes) -> tuple[int, int]:
    """Busy and steal clock ticks of all CPUs from ``/proc/stat``'s first line (busy: user,
    nice, system, irq and softirq; guest time is part of user)."""
    fields = [int(f) for f in data.split(b"\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def process_usage(before: Reading, after: Reading) -> dict[int, Usage]:
    """Each process's CPU and wait between two readings, summed over its threads present in
    both (a thread born or ended in between is left out; a counter that went back is 0)."""
    usage: dict[int, Usage] = {}
    for task, (run1, wait1) in after.items():
        start = before.get(task)
        if start is None:
            continue
        run = max(0, run1 - start[0]) / 1e9
        wait = max(0, wait1 - start[1]) / 1e9
        pid = task[0]
        usage[pid] = usage.get(pid, Usage()) + Usage(run, wait)
    return usage


def attribute(
    usage: Mapping[int, Usage],
    seconds: float,
    group_of: Mapping[int, str],
    label_of: Mapping[int, str],
    *,
    top: int = 3,
    steal: float = 0.0,
    busy: float = 0.0,
) -> Window:
    """Per-process usage summed by group (pids not in ``group_of`` are ``other``), and the
    ``top`` processes by CPU."""
    groups: dict[str, Usage] = {}
    for pid, used in usage.items():
        group = group_of.get(pid, OTHER)
        groups[group] = groups.get(group, Usage()) + used
    busiest = sorted(usage.items(), key=lambda item: item[1].cpu, reverse=True)[:top]
    named = [(label_of.get(pid, f"pid {pid}"), used) for pid, used in busiest if used.cpu > 0]
    return Window(seconds, groups, named, steal, busy)


def command_label(argv: list[str], comm: str) -> str:
    """A short name for a process: its program, and the module (``-m``), script or Java
    class it runs; the kernel's ``comm`` for a kernel thread (no command line)."""
    if not argv:
        return comm
    words = [Path(argv[0]).name]
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "-m":  # the module and its first word (a subcommand, often)
            words += ["-m", next(rest, ""), next((a for a in rest if a[:1] != "-"), "")]
            break
        if arg in ("-cp", "-classpath", "--class-path", "-c"):
            next(rest, None)
        elif not arg.startswith("-"):
            name = Path(arg).name
            words.append(name.rsplit(".", 1)[-1] if words[0] == "java" else name)
            break
    return " ".join(w for w in words if w)


def _ran(before: bytes, after: bytes) -> bool:
    """Whether a task's run time moved between two ``schedstat`` texts."""
    return before.split(None, 1)[0] != after.split(None, 1)[0]


@dataclass
class Snapshot:
    """One read of every task: raw ``schedstat`` texts aligned to the sampler's task list."""

    time: float  # monotonic, when reading began
    raw: list[bytes | None]
    busy: int  # /proc/stat clock ticks, all CPUs
    steal: int
    cost: float  # CPU seconds this thread spent taking it
    wall: float  # seconds it took
    blocked: int = 0  # times the thread waited meanwhile (a lock, the GIL, a page from disk)
    preempted: int = 0  # times the scheduler took the CPU from it meanwhile


@dataclass
class Sampler:
    """Snapshots of the tasks on the machine, taken when asked, by the calling thread.

    ``group_of`` and ``label_of`` name the processes of interest by pid; a process in the
    session of one of them (a forked child) counts with it. Everything else is ``other``,
    labelled by its command line. This process's tasks are read first and the sampler's other
    work comes after the reads, so the CPU it spends on a snapshot falls in the window that
    starts with it; ``window`` moves it from this process to the ``sampler`` group (pseudo pid
    ``SAMPLER``).

    To be short, a snapshot reads only the tasks that ran since the last full one: every
    ``full_every`` seconds (and when asked) a full snapshot reads every task, lists the
    machine's processes and threads anew, and marks the tasks that did not run since the
    previous full one dormant (a Redis's idle background threads, most kernel threads). While
    it reads, the calling thread runs at real-time priority (``SCHED_FIFO``, when allowed), so
    a snapshot takes its CPU time, not that plus a wait behind the run queue.
    """

    group_of: dict[int, str]
    label_of: dict[int, str]
    full_every: float = 2.0
    tasks: list[tuple[int, int]] = field(default_factory=list)
    realtime: bool = True  # whether snapshots may run at real-time priority
    _fds: list[int] = field(default_factory=list)
    _active: list[int] = field(default_factory=list)  # indexes of tasks read every snapshot
    _known: set[tuple[int, int]] = field(default_factory=set)
    _pids: set[int] = field(default_factory=set)
    _last_full: tuple[float, list[bytes | None]] = field(default=(0.0, []))
    _stat: int = -1
    _parsed: tuple[Snapshot, Reading] | None = None

    def __post_init__(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self._stat = os.open("/proc/stat", os.O_RDONLY)
        own = os.getpid()
        self.group_of = {**self.group_of, SAMPLER: SAMPLER_GROUP}
        self.label_of = {**self.label_of, SAMPLER: SAMPLER_GROUP}
        self.group_of.setdefault(own, OWN_GROUP)
        self.label_of.setdefault(own, OWN_GROUP)
        self._add_process(own)
        self._discover()
        self._active = list(range(len(self.tasks)))

    def snapshot(self, full: bool = False) -> Snapshot:
        """Read the active tasks, or every task when ``full`` or a full snapshot is due."""
        wall, cost = time.perf_counter(), time.thread_time()
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        elevated = self._elevate()
        try:
            started = time.monotonic()
            full = full or started - self._last_full[0] >= self.full_every
            raw: list[bytes | None] = [None] * len(self.tasks)
            pread = os.pread
            fds = self._fds
            ended = []
            for i in range(len(fds)) if full else self._active:
                try:
                    raw[i] = pread(fds[i], 64, 0)
                except OSError:  # the task has ended (or had, at an earlier full snapshot)
                    ended.append(i)
            busy, steal = parse_stat(os.pread(self._stat, 256, 0))
            for i in ended:
                self._forget(i)
            if full:
                self._classify(started, raw)
                self._discover()
        finally:
            if elevated:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        cost = time.thread_time() - cost
        wall = time.perf_counter() - wall
        end = resource.getrusage(resource.RUSAGE_THREAD)
        blocked, preempted = end.ru_nvcsw - usage.ru_nvcsw, end.ru_nivcsw - usage.ru_nivcsw
        return Snapshot(started, raw, busy, steal, cost, wall, blocked, preempted)

    def reading(self, snapshot: Snapshot) -> Reading:
        """A snapshot's raw texts parsed, by task (the last one parsed is kept: windows of
        consecutive snapshots parse each once)."""
        if self._parsed is None or self._parsed[0] is not snapshot:
            parsed = {
                task: parse_schedstat(data)
                for task, data in zip(self.tasks, snapshot.raw, strict=False)
                if data is not None
            }
            self._parsed = (snapshot, parsed)
        return self._parsed[1]

    def window(
        self, before: Snapshot, after: Snapshot, cost: float | None = None, top: int = 3
    ) -> Window:
        """What ran between two snapshots. ``cost``, the CPU of the snapshots taken from
        ``before`` up to ``after`` (default: ``before``'s alone), is the sampler's group."""
        cost = before.cost if cost is None else cost
        usage = process_usage(self.reading(before), self.reading(after))
        own = usage.get(os.getpid(), Usage())
        usage[os.getpid()] = Usage(max(0.0, own.cpu - cost), own.wait)
        usage[SAMPLER] = Usage(cost)
        return attribute(
            usage,
            after.time - before.time,
            self.group_of,
            self.label_of,
            top=top,
            steal=(after.steal - before.steal) / _CLOCK_TICKS,
            busy=(after.busy - before.busy) / _CLOCK_TICKS,
        )

    def close(self) -> None:
        for fd in [*self._fds, self._stat]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _elevate(self) -> bool:
        """Real-time priority for this thread, if wanted and allowed."""
        if not self.realtime:
            return False
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (PermissionError, AttributeError):
            self.realtime = False
            return False
        return True

    def _classify(self, now: float, raw: list[bytes | None]) -> None:
        """After a full snapshot: the tasks read every time are those that ran since the
        previous full one (and those not read in it)."""
        previous = self._last_full[1]
        self._active = [
            i
            for i, data in enumerate(raw)
            if data is not None
            and (i >= len(previous) or previous[i] is None or _ran(previous[i], data))
        ]
        self._last_full = (now, raw)

    def _forget(self, index: int) -> None:
        """Close an ended task's file; its pid may come back as another process."""
        if self._fds[index] < 0:
            return
        os.close(self._fds[index])
        self._fds[index] = -1
        task = self.tasks[index]
        self._known.discard(task)
        if task[0] == task[1]:
            self._pids.discard(task[0])

    def _discover(self) -> None:
        """Add the processes and threads that appeared; they are active until classified."""
        count = len(self.tasks)
        for name in os.listdir("/proc"):
            if name.isdigit():
                self._add_process(int(name))
        self._active += range(count, len(self.tasks))

    def _add_process(self, pid: int) -> None:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return
        if pid not in self._pids:
            self._pids.add(pid)
            self._name(pid)
        for tid in tids:
            if (pid, tid) in self._known:
                continue
            try:
                fd = os.open(f"/proc/{pid}/task/{tid}/schedstat", os.O_RDONLY)
            except OSError:
                continue
            self._known.add((pid, tid))
            self.tasks.append((pid, tid))
            self._fds.append(fd)

    def _name(self, pid: int) -> None:
        """Group and label a newly seen process: by its session's leader if that is known."""
        if pid in self.group_of:
            return
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
            session = int(stat[stat.rindex(b")") + 2 :].split()[3])
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            return
        if session != SAMPLER and session in self.group_of:
            self.group_of[pid] = self.group_of[session]
            self.label_of[pid] = f"{self.label_of.get(session, session)} child {comm}"
        else:
            label = command_label(argv.split("\0")[:-1] if argv else [], comm)
            self.label_of[pid] = f"{label} [{pid}]"
