"""``prodstate error report`` and ``prodstate errors`` against a real cluster."""

from __future__ import annotations

import json

from prodstate.statedb.cli_common import this_host
from prodstate.statedb.keys import errors as errors_key
from prodstate.testing import wait_until


def test_errors_are_reported_and_shown_per_service(infra, run):
    for host, message in [
        ("w1", "timeout talking to db"),
        ("w2", "disk full"),
        ("w1", "timeout again"),
    ]:
        done = run("error", "report", "checkout", message, "--host", host)
        assert done.returncode == 0, done.stderr
    assert run("error", "report", "search", "index <corrupt>").returncode == 0
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.xlen(errors_key("search")) == 1, what="the errors on the leaf")
    shown = json.loads(run("errors", "--json").stdout)
    assert [e["message"] for e in shown["checkout"]["errors"]] == [
        "timeout again",
        "disk full",
        "timeout talking to db",
    ]
    assert sum(shown["checkout"]["counts"]) == 3 and shown["checkout"]["counts"][-1] == 3
    assert [e["host"] for e in shown["search"]["errors"]] == [this_host()]
    only = json.loads(run("errors", "--json", "--service", "search").stdout)
    assert list(only) == ["search"]
    text = run("errors", "--since", "1h").stdout
    assert "checkout: 3 error(s) in the last 1h" in text and "disk full" in text
    bad = run("error", "report", "checkout", "")
    assert bad.returncode == 2 and "needs a message" in bad.stderr
