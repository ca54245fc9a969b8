"""Wall time of ``prodstate check`` and ``prodstate get``, whole process, against redis-cli.

Starts a private redis-server (a fresh heartbeat and a key in it), then runs each command
in turn, round after round, so that a machine whose speed drifts slows them all alike:
``redis-cli GET`` (the baseline: a C client), ``python -c pass`` (this interpreter's own
start-up, the floor for any Python command), the installed ``prodstate check`` and
``prodstate get`` console scripts, and, for each ``--compare DIR``, the same two commands
from the checkout in DIR (``python -m prodstate`` run in DIR, which ``-m`` puts first on
``sys.path``). Prints the
median, min and max per command; the target is a median under 150 ms for check and get.

Python commands run with their bytecode cached (``PYTHONPYCACHEPREFIX`` in the work
directory, written by the warm-up runs), as an installed package runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import Workdir, log, machine_line, table, terminate_as_interrupt

from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.testing import RedisServer

#: The target of the fleet issue: each command's median wall time, in seconds.
TARGET = 0.150


def commands(redis: RedisServer, compare: list[Path]) -> dict[str, tuple[list[str], Path | None]]:
    """Label -> (argv, working directory) of every command timed."""
    python = sys.executable
    script = str(Path(python).parent / "prodstate")
    where = ["--redis", redis.address]
    wide = ["--warning", "3600", "--critical", "3600"]  # OK however slow a round is
    cli = shutil.which("redis-cli") or "redis-cli"
    runs: dict[str, tuple[list[str], Path | None]] = {
        "redis-cli GET": ([cli, "-h", redis.host, "-p", str(redis.port), "GET", "key"], None),
        "python -c pass": ([python, "-c", "pass"], None),
        "prodstate check": ([script, "check", *where, *wide], None),
        "prodstate get": ([script, "get", "key", *where], None),
    }
    for checkout in compare:
        module = [python, "-m", "prodstate"]
        runs[f"check @ {checkout}"] = ([*module, "check", *where, *wide], checkout)
        runs[f"get @ {checkout}"] = ([*module, "get", "key", *where], checkout)
    return runs


def time_once(argv: list[str], cwd: Path | None, env: dict[str, str]) -> float:
    """Seconds from start to exit; the command must succeed (exit 0)."""
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=60)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stdout!r} {proc.stderr!r}"
        )
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=30, help="timed runs of each command")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each first")
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="another checkout of prodstate to time the same way (repeatable)",
    )
    parser.add_argument("--dir", type=Path, help="work directory (kept)")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    for checkout in args.compare:
        if not (checkout / "prodstate" / "__init__.py").is_file():
            parser.error(f"--compare {checkout}: not a prodstate checkout")
    with terminate_as_interrupt(), Workdir(args.dir) as workdir:
        redis = RedisServer(workdir.path, name="redis")
        redis.start()
        try:
            runs = commands(redis, [c.resolve() for c in args.compare])
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = str(workdir.path / "pycache")
            times: dict[str, list[float]] = {label: [] for label in runs}
            log(f"{len(runs)} commands, {args.warmup} + {args.runs} runs each, in turn")
            with redis.client() as conn:
                conn.set("key", "value")
                for n in range(args.warmup + args.runs):
                    conn.set(HEARTBEAT_KEY, f"{time.time():.6f}")
                    for label, (argv, cwd) in runs.items():
                        took = time_once(argv, cwd, env)
                        if n >= args.warmup:
                            times[label].append(took)
        finally:
            redis.stop()
    rows = [["command", "median ms", "min ms", "max ms"]]
    for label, values in times.items():
        rows.append([label, *(f"{f(values) * 1000:.0f}" for f in (statistics.median, min, max))])
    print(f"# {machine_line()}; python {sys.version.split()[0]}; {args.runs} runs each")
    print(table(rows))
    for label in ("prodstate check", "prodstate get"):
        median = statistics.median(times[label])
        verdict = "meets" if median < TARGET else "misses"
        print(f"{label}: median {median * 1000:.0f} ms {verdict} the {TARGET * 1000:.0f} ms target")


if __name__ == "__main__":
    main()
