"""``prodstate web``'s options: bad ones are one line and exit 2, before anything starts."""

from __future__ import annotations

from click.testing import CliRunner

from prodstate.statedb.web import web

BASE = ["--zk", "127.0.0.1:1", "--cluster", "dev", "--port", "1"]


def _run(*args: str):
    return CliRunner().invoke(web, [*BASE, *args])


def test_a_bad_stale_after_is_refused():
    done = _run("--stale-after", "soon")
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert done.output.startswith("prodstate: bad --stale-after:") and done.output.count("\n") == 1


def test_a_bad_zookeeper_address_is_refused():
    done = CliRunner().invoke(web, ["--zk", "host:notaport", "--cluster", "dev"])
    assert done.exit_code == 2 and "bad --zk" in done.output and "Traceback" not in done.output


def test_a_refresh_out_of_range_is_refused():
    done = _run("--refresh", "0")
    assert done.exit_code == 2 and "--refresh" in done.output
