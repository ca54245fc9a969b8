"""Run the fault scenarios outside pytest and print a table.

``python -m integration.faults.report [--runs N] [--scenario NAME ...]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from prodstate.testing.process import stop_all

from .harness import FaultResult
from .scenarios import FULL_RESYNCS, NO_FULL_RESYNC, SCENARIOS, run_scenario

HEADER = (
    "scenario",
    "runs",
    "confirmed",
    "lost",
    "full resyncs (expected)",
    "failover s",
    "write gap s",
    "stale leaf s",
    "fresh again s",
    "healed s",
)


def _expected(name: str) -> str:
    allowed = FULL_RESYNCS.get(name, NO_FULL_RESYNC)
    low, high = allowed.start, allowed.stop - 1
    return str(low) if low == high else f"{low}-{high}"


def spread(values: list[float | None]) -> str:
    """``min/median/max`` of the known values (one figure for one run; "-" for none)."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return "-"
    if len(known) == 1:
        return f"{known[0]:.2f}"
    return f"{known[0]:.2f}/{statistics.median(known):.2f}/{known[-1]:.2f}"


def row(name: str, results: list[FaultResult]) -> tuple[str, ...]:
    """One table row: totals over runs; min/median/max of the timings."""
    return (
        name,
        str(len(results)),
        str(sum(r.confirmed for r in results)),
        str(sum(r.lost for r in results)),
        f"{sum(r.full_resyncs for r in results)} ({_expected(name)} per run)",
        spread([r.failover_seconds for r in results]),
        spread([r.gap_seconds for r in results]),
        spread([r.stale_seconds for r in results]),
        spread([r.fresh_seconds for r in results]),
        spread([r.heal_seconds for r in results]),
    )


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [HEADER, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all"
    )
    args = parser.parse_args(argv)
    rows, bad = [], 0
    for name in args.scenario or list(SCENARIOS):
        results = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"faults-{name}-") as workdir:
                try:
                    result = run_scenario(name, Path(workdir))
                finally:
                    stop_all()  # nothing outlives a failed run
            print(f"run {run + 1}: {result.line()}", file=sys.stderr, flush=True)
            allowed = FULL_RESYNCS.get(name, NO_FULL_RESYNC)
            bad += not result.ok or result.full_resyncs not in allowed
            results.append(result)
        rows.append(row(name, results))
    print(table(rows))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
