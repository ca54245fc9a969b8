"""Counts over time for the dashboard's charts (pure): errors per service and deploys per
outcome, per hour, as a JSON document the page's chart script draws and a table shows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry

HOUR = 3600.0
#: Services drawn as their own line; the others are summed as "other services".
TOP_SERVICES = 6
#: How deploy outcomes are grouped on the deploys chart.
OUTCOME_GROUPS = {
    "succeeded": "succeeded",
    "running": "running",
    "failed": "failed",
    "killed": "failed",
    "aborted": "failed",
    "abandoned": "abandoned",
}
#: The colour of each group of outcomes.
OUTCOME_COLORS = {
    "succeeded": "#3a7d44",
    "failed": "#d1495b",
    "abandoned": "#e09f3e",
    "running": "#2e86ab",
}


@dataclass(frozen=True)
class Series:
    """One line of a chart: its label and a value per bucket."""

    label: str
    values: tuple[int, ...]
    #: A CSS colour (``#rrggbb``) that means something (an outcome's), or None for the
    #: chart's own palette.
    color: str | None = None

    @property
    def total(self) -> int:
        """The sum over every bucket."""
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    """Counts per bucket: ``starts`` are the buckets' start times (seconds, oldest first)."""

    id: str
    title: str
    unit: str
    starts: tuple[float, ...]
    series: tuple[Series, ...]

    @property
    def empty(self) -> bool:
        """True when every count is zero."""
        return not any(s.total for s in self.series)

    def to_json(self) -> str:
        """What the chart script reads: ``{title, unit, x, series: [{label, values}]}``."""
        doc = {
            "title": self.title,
            "unit": self.unit,
            "x": list(self.starts),
            "series": [
                {"label": s.label, "values": list(s.values), "color": s.color} for s in self.series
            ],
        }
        return json.dumps(doc, separators=(",", ":"))

    def rows(self) -> list[tuple[float, list[int]]]:
        """The chart as a table: a bucket's start and its count in each series."""
        return [(at, [s.values[i] for s in self.series]) for i, at in enumerate(self.starts)]


def bucket_starts(now: float, buckets: int, size: float = HOUR) -> tuple[float, ...]:
    """The starts of ``buckets`` buckets of ``size`` seconds, the last one ending at the end
    of the current whole hour (so a bucket is a clock hour), oldest first."""
    end = (now // size + 1) * size
    return tuple(end - (buckets - i) * size for i in range(buckets))


def counts(times: Iterable[float], starts: Sequence[float], size: float = HOUR) -> tuple[int, ...]:
    """How many of ``times`` fall in each bucket (times outside every bucket are left out)."""
    found = [0] * len(starts)
    if not starts:
        return ()
    for at in times:
        index = int((at - starts[0]) // size)
        if 0 <= index < len(starts):
            found[index] += 1
    return tuple(found)


def errors_chart(
    found: Mapping[str, Sequence[ErrorEntry]],
    now: float,
    hours: int = 24,
    chart_id: str = "errors-chart",
    top: int = TOP_SERVICES,
) -> Chart:
    """Errors per hour: one series per service (the ``top`` with most errors, the others
    summed as ``other services``)."""
    starts = bucket_starts(now, hours)
    series = [Series(name, counts((e.at for e in items), starts)) for name, items in found.items()]
    series.sort(key=lambda s: (-s.total, s.label))
    kept, others = series[:top], series[top:]
    if others:
        summed = tuple(sum(values) for values in zip(*(s.values for s in others), strict=True))
        kept.append(Series(f"{len(others)} other services", summed))
    return Chart(chart_id, f"Errors per hour, last {hours} hours", "errors", starts, tuple(kept))


def deploys_chart(
    found: Sequence[Deploy], now: float, hours: int = 24, chart_id: str = "deploys-chart"
) -> Chart:
    """Deploys started per hour, one series per kind of outcome seen."""
    starts = bucket_starts(now, hours)
    by_group: dict[str, list[float]] = {}
    for deploy in found:
        group = OUTCOME_GROUPS.get(deploy.outcome, "failed")
        by_group.setdefault(group, []).append(deploy.started_at)
    order = ["succeeded", "failed", "abandoned", "running"]
    series = tuple(
        Series(g, counts(by_group[g], starts), OUTCOME_COLORS[g]) for g in order if g in by_group
    )
    return Chart(
        chart_id, f"Deploys started per hour, last {hours} hours", "deploys", starts, series
    )
