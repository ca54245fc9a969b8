"""The deploy log's pure parts: output tails, records, merging and searching."""

from __future__ import annotations

import json

from prodstate.statedb.deploys import (
    Deploy,
    DeploySearch,
    Outcome,
    OutputTail,
    abandon_command,
    finish_commands,
    merge_entries,
    search,
    start_entry,
)
from prodstate.statedb.keys import DEPLOY_OUTPUT, DEPLOYS, SERVICES

T0 = 1_800_000_000


def _fields(command):
    words = command[6:]
    return dict(zip(words[::2], words[1::2], strict=True))


def _deploy(**kw):
    base = dict(
        id="d1",
        service="web",
        version="v2",
        targets=["w1", "w2"],
        who="ann",
        host="ops1",
        started_at=T0,
    )
    return Deploy(**{**base, **kw})


def test_the_tail_keeps_the_last_lines_within_the_character_bound():
    tail = OutputTail(lines=3, chars=12)
    for i in range(10):
        tail.add(f"line{i}\n")
    assert tail.text() == "\nline8\nline9"  # lines 7-9, cut to the last 12 characters
    short = OutputTail(lines=3, chars=100)
    for line in ("a\n", "b\n", "c\n", "d\n"):
        short.add(line)
    assert short.text() == "b\nc\nd"


def test_start_and_finish_records():
    start = start_entry("d1", "web", "v2", ["w1", "w2"], "ann", "ops1", "make deploy")
    assert start[:6] == ("XADD", DEPLOYS, "MAXLEN", "~", 10_000, "*")
    assert _fields(start)["targets"] == "w1 w2" and _fields(start)["phase"] == "started"
    ok = finish_commands(_deploy(), Outcome(0), "x" * 3000 + "done", T0 + 5)
    assert _fields(ok[0])["outcome"] == "succeeded" and "output" not in _fields(ok[0])
    assert ok[1][:6] == ("XADD", DEPLOY_OUTPUT, "MAXLEN", "~", 1_000, "*")
    assert _fields(ok[1])["id"] == "d1" and _fields(ok[1])["output"] == "x" * 1996 + "done"
    assert ok[2][:3] == ("HSET", SERVICES, "web")
    assert json.loads(ok[2][3])["version"] == "v2"
    assert "targets" not in _fields(ok[0])  # the start entry holds them
    assert json.loads(ok[2][3])["targets"] == ["w1", "w2"]
    failed = finish_commands(_deploy(), Outcome(2), "boom", T0 + 5)
    assert len(failed) == 2  # a failed deploy leaves the current version alone
    assert _fields(failed[0])["outcome"] == "failed" and _fields(failed[0])["exit_code"] == "2"


def test_a_long_command_is_kept_cut_and_marked():
    start = start_entry("d1", "web", "v2", [], "ann", "ops1", "deploy " + "y" * 1000)
    command = _fields(start)["command"]
    assert len(command) == 500 and command.startswith("deploy y") and command.endswith("…")


def _entry(ms, cmd):
    return (f"{ms}-0", _fields(cmd))


A = _deploy(id="a")
B = _deploy(id="b", service="api", version="v9", targets=["a1"])


def _entries():
    return [
        _entry(T0 * 1000, start_entry("a", "web", "v2", ["w1", "w2"], "ann", "ops1", "make")),
        _entry(T0 * 1000 + 10, start_entry("b", "api", "v9", ["a1"], "bob", "ops2", "fab")),
        _entry(T0 * 1000 + 20, finish_commands(A, Outcome(0), "all good", T0)[0]),
        _entry(T0 * 1000 + 3_600_000, finish_commands(B, Outcome(1), "error: x", T0)[0]),
    ]


def _outputs():
    return [
        _entry(T0 * 1000 + 20, finish_commands(A, Outcome(0), "all good", T0)[1]),
        _entry(T0 * 1000 + 3_600_000, finish_commands(B, Outcome(1), "error: x", T0)[1]),
    ]


def test_entries_merge_into_deploys_newest_first():
    merged = merge_entries(reversed(_entries()), _outputs())  # XREVRANGE order
    assert [d.id for d in merged] == ["b", "a"]
    b, a = merged
    assert (a.outcome, a.exit_code, a.output) == ("succeeded", 0, "all good")
    assert (b.outcome, b.exit_code, b.who) == ("failed", 1, "bob")
    assert b.finished_at == T0 + 3600
    assert a.command == "make"


def test_a_deploy_whose_start_was_trimmed_is_rebuilt_from_its_outcome():
    (merged,) = merge_entries(_entries()[3:])
    assert (merged.id, merged.service, merged.outcome) == ("b", "api", "failed")
    assert merged.output == ""  # its output was trimmed too


def test_running_deploys_have_no_outcome_yet():
    (merged,) = merge_entries(_entries()[:1])
    assert merged.outcome == "running" and merged.exit_code is None


def test_search_by_each_criterion():
    entries = _entries()

    def ids(**kw):
        return [d.id for d in search(entries, DeploySearch(**kw), _outputs())]

    assert ids() == ["b", "a"]
    assert ids(service="web") == ["a"]
    assert ids(machine="a1") == ["b"]
    assert ids(machine="ops1") == ["a"]  # where it ran counts too
    assert ids(version="v9") == ["b"]
    assert ids(since=T0 + 0.005) == ["b"]
    assert ids(until=T0 + 0.005) == ["a"]
    assert ids(text="ERROR") == ["b"]
    assert ids(service="web", version="v9") == []


def test_stream_range_covers_the_time_range():
    assert DeploySearch().stream_range() == ("+", "-")
    high, low = DeploySearch(since=T0, until=T0 + 10).stream_range()
    assert low == str(T0 * 1000) and high == str((T0 + 10 + 86400) * 1000)


def test_an_outcome_names_how_the_command_ended_and_the_status_a_shell_gives():
    cases = [
        (Outcome(0), "succeeded", 0, None, 0),
        (Outcome(3), "failed", 3, None, 3),
        (Outcome(-9), "killed", None, 9, 137),  # by a signal nobody sent through the deploy
        (Outcome(-15, interrupted_by=15), "aborted", None, 15, 143),
        (Outcome(1, interrupted_by=2), "aborted", 1, 2, 1),  # it caught the Ctrl-C and exited
    ]
    for outcome, name, code, sig, status in cases:
        assert (outcome.name, outcome.exit_code, outcome.signal, outcome.shell_status) == (
            name, code, sig, status,
        )  # fmt: skip


def test_outcomes_are_recorded_and_read_back_as_operators_read_them():
    d = _deploy()
    entries = [
        _entry(T0 * 1000, start_entry("d1", "web", "v2", [], "ann", "h", "x")),
        _entry(T0 * 1000 + 5, finish_commands(d, Outcome(-15, interrupted_by=15), "", T0)[0]),
    ]
    (back,) = merge_entries(entries)
    assert (back.outcome, back.exit_code, back.signal) == ("aborted", None, 15)
    assert back.describe_outcome() == "aborted (SIGTERM)"
    killed = finish_commands(d, Outcome(-9), "", T0)
    assert len(killed) == 2  # no new current version
    (back,) = merge_entries([entries[0], _entry(T0 * 1000 + 5, killed[0])])
    assert back.describe_outcome() == "killed (SIGKILL)"
    (back,) = merge_entries(
        [entries[0], _entry(T0 * 1000 + 5, finish_commands(d, Outcome(3), "", T0)[0])]
    )
    assert back.describe_outcome() == "failed (exit 3)"
    (back,) = merge_entries([entries[0], _entry(T0 * 1000 + 9, abandon_command(d))])
    assert (back.outcome, back.describe_outcome()) == ("abandoned", "abandoned")
    (running,) = merge_entries(entries[:1])
    assert running.describe_outcome() == "running"
