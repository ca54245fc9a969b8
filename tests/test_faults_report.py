"""The fault report's table and its saved runs (no servers: results are made up here)."""

from __future__ import annotations

from pathlib import Path

from integration.faults.harness import FaultResult
from integration.faults.report import bad_runs, load, main, row, save


def result(scenario: str = "branch_kill", **fields: object) -> FaultResult:
    base: dict = {
        "scenario": scenario,
        "confirmed": 100,
        "failed": 0,
        "unknown": 0,
        "lost": 0,
        "full_resyncs": 0,
        "failover_seconds": None,
        "roots_seen": [1],
        "epochs_monotonic": True,
        "stale_seconds": 0.5,
    }
    base.update(fields)
    return FaultResult(**base)


def test_saved_runs_load_back_equal_and_errors_stay_errors(tmp_path: Path):
    path = tmp_path / "runs.json"
    results = {
        "branch_kill": [result(stale_seconds=0.4, lost_by_node={"leaf1": 0}), "TimeoutError: x"],
        "switchover": [result("switchover", failover_seconds=0.3)],
    }
    save(str(path), results)
    assert load([str(path)]) == results


def test_several_files_merge_by_scenario_in_file_order(tmp_path: Path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    save(str(first), {"branch_kill": [result(stale_seconds=1.0)]})
    save(str(second), {"branch_kill": [result(stale_seconds=2.0)], "switchover": []})
    merged = load([str(first), str(second)])
    assert [r.stale_seconds for r in merged["branch_kill"]] == [1.0, 2.0]


def test_a_row_counts_a_died_run_in_runs_and_errors_but_not_in_the_figures():
    cells = row("branch_kill", [result(stale_seconds=1.0), "RuntimeError: writer died", result()])
    assert cells[:5] == ("branch_kill", "3", "1", "200", "0")
    assert cells[8] == "0.50/0.75/1.00"  # stale leaf s: min/median/max of the two results


def test_a_lost_write_an_unexpected_full_resync_or_an_error_is_a_bad_run():
    assert bad_runs("branch_kill", [result(), result()]) == 0
    assert bad_runs("branch_kill", [result(lost=1), result(full_resyncs=1), "E: x"]) == 3
    assert bad_runs("root_machine_crash", [result("root_machine_crash", full_resyncs=1)]) == 0


def test_from_prints_the_table_of_saved_runs_and_fails_on_a_bad_one(tmp_path: Path, capsys):
    path = tmp_path / "runs.json"
    save(str(path), {"branch_kill": [result(), result(stale_seconds=2.0)]})
    assert main(["--from", str(path)]) == 0
    out = capsys.readouterr().out
    assert "branch_kill" in out and "0.50/1.25/2.00" in out
    save(str(path), {"branch_kill": [result(lost=2)]})
    assert main(["--from", str(path)]) == 1


def test_keep_copies_the_work_directory_of_a_bad_run_only(tmp_path: Path, monkeypatch):
    import socket

    from integration.faults import report

    outcomes = iter([result(), result(full_resyncs=2), "ignored"])

    def fake_run(name: str, workdir: Path) -> FaultResult:
        (workdir / "node").mkdir()
        (workdir / "node" / "agent.log").write_text(f"{name} log\n")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(workdir / "node" / "redis.sock"))  # a socket is not copied
        listener.close()
        return next(outcomes)

    monkeypatch.setattr(report, "run_scenario", fake_run)
    monkeypatch.setattr(report, "stop_all", lambda: None)
    kept = tmp_path / "kept"
    results = report.run_all(["branch_kill"], 2, keep_dir=str(kept))
    assert [r.full_resyncs for r in results["branch_kill"]] == [0, 2]
    assert sorted(p.name for p in kept.iterdir()) == ["branch_kill-2"]
    assert (kept / "branch_kill-2" / "node" / "agent.log").read_text() == "branch_kill log\n"
    assert not (kept / "branch_kill-2" / "node" / "redis.sock").exists()
