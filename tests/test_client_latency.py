"""The client's write-latency histogram (prodstate.client.latency)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from prodstate.client import WriteFailed, WriteRejected, WriteUncertain, latency
from prodstate.client.fenced import WriteConflict


@pytest.mark.parametrize(
    "exc, outcome",
    [
        (WriteUncertain("x"), "uncertain"),
        (WriteRejected("x"), "rejected"),
        (WriteConflict("x", 0), "rejected"),
        (WriteFailed("x"), "failed"),
        (ConnectionError("x"), "error"),
    ],
)
def test_each_exception_has_its_outcome(exc, outcome):
    assert latency.outcome_of(exc) == outcome


def test_one_histogram_per_registry_counting_by_cluster_and_outcome():
    registry = CollectorRegistry()
    assert latency.histogram(registry) is latency.histogram(registry)
    latency.histogram(registry).labels(cluster="prod", outcome="confirmed").observe(0.004)
    labels = {"cluster": "prod", "outcome": "confirmed"}
    assert registry.get_sample_value(f"{latency.NAME}_count", labels) == 1
    assert registry.get_sample_value(f"{latency.NAME}_bucket", {**labels, "le": "0.005"}) == 1
    assert registry.get_sample_value(f"{latency.NAME}_bucket", {**labels, "le": "0.0025"}) == 0
