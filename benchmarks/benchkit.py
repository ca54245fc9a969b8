"""What every benchmark script shares: logging, tables, percentiles, and a clean way out.

The scripts are run as ``python benchmarks/NAME.py``, so this module is imported by its bare
name (the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from prodstate.testing.process import live_processes


def log(message: str) -> None:
    """A timestamped progress line on stderr (the figures go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the first row is the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def fmt(seconds: float | None, digits: int = 3) -> str:
    """Seconds for a table cell; ``-`` when there is no figure."""
    return "-" if seconds is None else f"{seconds:.{digits}f}"


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds."""
    return f"{seconds * 1000:.3f}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; ``values`` must not be empty."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median_of(values: Sequence[float | None]) -> float | None:
    """Median of the figures present; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def machine_line() -> str:
    """CPU count and load: figures from one host depend on both."""
    load = os.getloadavg()
    return f"cpus {os.cpu_count()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C, so clusters are stopped on the way out."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Workdir:
    """The benchmark's work dir: ``--dir`` if given (kept), else a temp dir removed on success.

    Used as a context manager; on the way out it stops any process the harness left behind.
    Set ``failed`` to keep a temp dir's logs for a look.
    """

    def __init__(self, given: Path | None) -> None:
        self.given = given
        self.path = given or Path(tempfile.mkdtemp(prefix="prodstate-bench-"))
        self.path.mkdir(parents=True, exist_ok=True)
        self.failed = False

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc: object) -> None:
        left = live_processes()
        if left:  # LocalCluster stops its own; this only guards against a harness bug
            log(f"stopping leftover processes: {left}")
            for proc in left:
                proc.stop(timeout=5)
        if self.given is None and (self.failed or exc[0] is not None):
            log(f"the run failed: its logs are kept in {self.path}")
        elif self.given is None:
            shutil.rmtree(self.path, ignore_errors=True)
