"""How long the client's writes take, for applications that serve Prometheus metrics:
``prodstate_client_write_seconds{cluster, outcome}``, a histogram in prometheus_client's
default registry (the one an application's ``/metrics`` serves), created at the first
write so that a client that only reads never imports prometheus_client.

Outcomes: ``confirmed``; ``rejected`` (the command itself was refused, or a condition did
not hold); ``uncertain`` (the root may have applied it); ``failed`` (not applied by the
deadline); ``error`` (anything else raised).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

NAME = "prodstate_client_write_seconds"
#: Seconds: a confirmed write takes milliseconds; one waiting out a failover, seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_histograms: dict[int, Any] = {}


def histogram(registry: CollectorRegistry | None = None) -> Any:
    """The histogram in ``registry`` (default: prometheus_client's), made once."""
    from prometheus_client import REGISTRY, Histogram

    registry = REGISTRY if registry is None else registry
    found = _histograms.get(id(registry))
    if found is None:
        found = Histogram(
            NAME,
            "Writes through prodstate.Client, from the call to its outcome",
            ["cluster", "outcome"],
            buckets=BUCKETS,
            registry=registry,
        )
        _histograms[id(registry)] = found
    return found


def outcome_of(exc: BaseException) -> str:
    """The outcome label of a write that raised ``exc``."""
    from prodstate.client.fenced import WriteFailed, WriteRejected, WriteUncertain

    if isinstance(exc, WriteUncertain):
        return "uncertain"
    if isinstance(exc, WriteRejected):
        return "rejected"
    if isinstance(exc, WriteFailed):
        return "failed"
    return "error"


def observe(cluster: str, outcome: str, seconds: float) -> None:
    """Count one write of ``cluster`` that ended with ``outcome`` after ``seconds``."""
    histogram().labels(cluster=cluster, outcome=outcome).observe(seconds)
