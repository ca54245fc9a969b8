#!/usr/bin/env bash
# The two commands of README.rst: `./dev.sh up` (a local cluster) and
# `./dev.sh test` (the whole test suite). Both set the machine up first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

usage() {
    echo "usage: ./dev.sh up [prodstate dev up options] | ./dev.sh test [pytest options]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
command="$1"
shift
case "$command" in
    up)
        scripts/bootstrap.sh
        exec .venv/bin/prodstate dev up "$@"
        ;;
    test)
        scripts/bootstrap.sh
        .venv/bin/ruff check prodstate tests integration benchmarks
        .venv/bin/ruff format --check --quiet prodstate tests integration benchmarks
        # Half of an integration test is waiting on servers: one process more than the
        # machine has cores (at most 8), unless the arguments choose (-n 0: one process).
        workers=$(( $(nproc) + 1 ))
        parallel=(-n "$(( workers > 8 ? 8 : workers ))" --dist worksteal)
        for arg in "$@"; do
            case "$arg" in -n | -n* | --numprocesses* | no:xdist) parallel=() ;; esac
        done
        exec .venv/bin/python -m pytest ${parallel[@]+"${parallel[@]}"} "$@"
        ;;
    *)
        usage
        ;;
esac
