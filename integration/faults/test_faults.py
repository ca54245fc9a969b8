"""Fault injection against a real cluster: no confirmed write lost, one root at a time."""

from __future__ import annotations

import pytest

from .scenarios import FULL_RESYNCS, NO_FULL_RESYNC, SCENARIOS, SLOW, run_scenario


@pytest.mark.parametrize(
    "scenario", [pytest.param(s, marks=[pytest.mark.slow] if s in SLOW else []) for s in SCENARIOS]
)
def test_fault(scenario, tmp_path):
    result = run_scenario(scenario, tmp_path)
    print(result.line())
    assert result.lost == 0, result.lost_by_node
    assert result.epochs_monotonic, "confirmed writes went back to an older root's epoch"
    assert not result.diverged, result.diverged
    assert result.full_resyncs in FULL_RESYNCS.get(scenario, NO_FULL_RESYNC)
