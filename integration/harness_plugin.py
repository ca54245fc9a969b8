"""pytest plugin of the integration suites: print the tails of server logs when a test
fails, and reap leftovers.

It lives beside the tests, not in the ``prodstate`` package: the package must import
with its runtime dependencies alone, and pytest is not one. ``integration/conftest.py``
loads it; another suite of this tree loads it with
``pytest_plugins = ["integration.harness_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from prodstate.testing.process import live_processes, process_history

_FIRST = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_FIRST] = len(process_history())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    first = item.stash.get(_FIRST, 0)
    history = process_history()
    shown = [p for i, p in enumerate(history) if i >= first or p.running]
    if shown:
        # The failure again after the logs, so that a reader of the output's tail sees why.
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash is not None else _last_line(report.longreprtext)
        text = "\n".join(p.log_tail() for p in shown) + f"\n=> {item.nodeid} failed: {reason}\n"
        report.sections.append((f"server logs ({report.when})", text))


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a managed process running after its fixtures ended."""
    before = {id(p) for p in live_processes()}
    yield
    leftovers = [p for p in live_processes() if id(p) not in before]
    for proc in leftovers:
        proc.kill()
    assert not leftovers, f"processes left running: {leftovers}"
