"""The state database's metrics (``/metrics`` on the dashboard's server), in Prometheus's
text format: machines by freshness, locks held and expired, deploys of the last day by
outcome, errors of the last hour per service, and whether each could be read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class Reading:
    """The counts read for one scrape; None for a part that could not be read."""

    machines: Mapping[str, int] | None
    locks: Mapping[str, int] | None
    deploys: Mapping[str, int] | None
    errors: Mapping[str, int] | None
    copy_age: float | None


def families(reading: Reading) -> list[Metric]:
    """The metric families of ``reading`` (a part not read is left out, its ``read_ok`` 0)."""
    found: list[Metric] = []

    def by_label(name: str, doc: str, label: str, counts: Mapping[str, int] | None) -> None:
        if counts is None:
            return
        family = GaugeMetricFamily(f"prodstate_statedb_{name}", doc, labels=[label])
        for value, count in sorted(counts.items()):
            family.add_metric([value], count)
        found.append(family)

    by_label(
        "machines", "Machines by freshness of their last report.", "freshness", reading.machines
    )
    by_label("locks", "Locks by state (an expired lock is free).", "state", reading.locks)
    by_label(
        "deploys_last_day",
        "Deploys started in the last day by outcome.",
        "outcome",
        reading.deploys,
    )
    by_label("errors_last_hour", "Errors of the last hour per service.", "service", reading.errors)
    if reading.copy_age is not None:
        found.append(
            GaugeMetricFamily(
                "prodstate_statedb_copy_age_seconds",
                "Age of the root's heartbeat in the Redis the dashboard reads.",
                value=reading.copy_age,
            )
        )
    ok = GaugeMetricFamily(
        "prodstate_statedb_read_ok", "1 if the part could be read, else 0.", labels=["part"]
    )
    for part in ("machines", "locks", "deploys", "errors"):
        ok.add_metric([part], 0 if getattr(reading, part) is None else 1)
    found.append(ok)
    return found


class _Once(Collector):
    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        yield from families(self.reading)


def exposition(reading: Reading) -> bytes:
    """``reading`` in Prometheus's text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once(reading))
    return generate_latest(registry)
