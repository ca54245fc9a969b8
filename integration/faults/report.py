"""Run the fault scenarios outside pytest and print a table.

``python -m integration.faults.report [--runs N] [--scenario NAME ...] [--json FILE]
[--keep DIR]``; ``--from FILE ...`` prints the table of saved runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from prodstate.testing.process import stop_all

from .harness import FaultResult
from .scenarios import FULL_RESYNCS, NO_FULL_RESYNC, SCENARIOS, run_scenario

HEADER = (
    "scenario",
    "runs",
    "errors",
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


def row(name: str, outcomes: list[FaultResult | str]) -> tuple[str, ...]:
    """One table row: totals over runs; min/median/max of the timings. A run that died
    (its error in place of a result) counts in runs and errors only."""
    results = [r for r in outcomes if isinstance(r, FaultResult)]
    return (
        name,
        str(len(outcomes)),
        str(len(outcomes) - len(results)),
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


def load(paths: list[str]) -> dict[str, list[FaultResult | str]]:
    """Results saved by ``--json``, merged in file order, by scenario."""
    merged: dict[str, list[FaultResult | str]] = {}
    for path in paths:
        for entry in json.loads(Path(path).read_text()):
            outcome: FaultResult | str = entry.get("error") or FaultResult(
                **{k: v for k, v in entry.items() if k != "error"}
            )
            merged.setdefault(entry["scenario"], []).append(outcome)
    return merged


def save(path: str, results: dict[str, list[FaultResult | str]]) -> None:
    """Every result so far as JSON (rewritten after each run, so an interrupted set keeps
    what it measured)."""
    entries = [
        {"scenario": name, "error": r} if isinstance(r, str) else asdict(r)
        for name, outcomes in results.items()
        for r in outcomes
    ]
    Path(path).write_text(json.dumps(entries, indent=1) + "\n")


def is_bad(name: str, outcome: FaultResult | str) -> bool:
    """A run that failed a check, lost a write, resynced fully beyond the expected, or died."""
    allowed = FULL_RESYNCS.get(name, NO_FULL_RESYNC)
    return isinstance(outcome, str) or not outcome.ok or outcome.full_resyncs not in allowed


def bad_runs(name: str, outcomes: list[FaultResult | str]) -> int:
    return sum(is_bad(name, r) for r in outcomes)


def keep(workdir: Path, dest: Path) -> None:
    """Copy a run's work directory (logs, configurations, data; not sockets) to ``dest``."""

    def not_regular(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if not (Path(folder, n).is_file() or Path(folder, n).is_dir())]

    shutil.copytree(workdir, dest, ignore=not_regular, symlinks=True, dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument("--json", help="write every run's result here, after each run")
    parser.add_argument(
        "--keep", metavar="DIR", help="copy the work directory of every bad run into DIR/NAME-RUN"
    )
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="JSON",
        help="print the table of results saved with --json (repeatable; runs nothing)",
    )
    args = parser.parse_args(argv)
    if args.sources:
        results = load(args.sources)
    else:
        results = run_all(args.scenario or list(SCENARIOS), args.runs, args.json, args.keep)
    rows = [row(name, outcomes) for name, outcomes in results.items()]
    print(table(rows))
    return 1 if any(bad_runs(name, outcomes) for name, outcomes in results.items()) else 0


def run_all(
    names: list[str], runs: int, json_path: str | None = None, keep_dir: str | None = None
) -> dict:
    """``runs`` rounds of every scenario in ``names`` (round by round, so an interrupted set
    has whole rounds); a run that raised is kept as its error, and with ``keep_dir`` a bad
    run's work directory is kept too."""
    results: dict[str, list[FaultResult | str]] = {name: [] for name in names}
    for run in range(runs):
        for name in names:
            with tempfile.TemporaryDirectory(prefix=f"faults-{name}-") as workdir:
                try:
                    outcome: FaultResult | str = run_scenario(name, Path(workdir))
                    line = outcome.line()
                except Exception as exc:  # one run's failure is a result, not the end of the set
                    outcome = f"{type(exc).__name__}: {exc}"
                    line = f"{name}: ERROR {outcome}"
                finally:
                    stop_all()  # nothing outlives a failed run
                if keep_dir and is_bad(name, outcome):
                    keep(Path(workdir), Path(keep_dir) / f"{name}-{run + 1}")
                    line += f" (kept in {Path(keep_dir) / f'{name}-{run + 1}'})"
            print(f"run {run + 1}: {line}", file=sys.stderr, flush=True)
            results[name].append(outcome)
            if json_path:
                save(json_path, results)
    return results


if __name__ == "__main__":
    sys.exit(main())
