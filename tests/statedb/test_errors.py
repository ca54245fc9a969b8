"""Error records, their order and their counts over time (pure)."""

from __future__ import annotations

import pytest

from prodstate.statedb.errors import ErrorEntry, entries, histogram, report_commands, sparkline
from prodstate.statedb.keys import ERROR_SERVICES

NOW = 1_800_000_000.0


def test_report_commands_add_to_the_capped_stream_and_mark_the_service():
    xadd, zadd = report_commands("web", "h1", "boom", NOW)
    assert xadd == (
        "XADD",
        "infra:errors:web",
        "MAXLEN",
        "~",
        200,
        "*",
        "host",
        "h1",
        "message",
        "boom",
    )
    assert zadd == ("ZADD", ERROR_SERVICES, int(NOW * 1000), "web")
    assert len(report_commands("web", "h1", "x" * 10_000, NOW)[0][-1]) == 1000


@pytest.mark.parametrize(
    ("service", "host", "message", "text"),
    [
        ("bad name", "h1", "m", "service name"),
        ("web", "h 1", "m", "host name"),
        ("web", "h1", " ", "message"),
    ],
)
def test_bad_reports_are_refused(service, host, message, text):
    with pytest.raises(ValueError, match=text):
        report_commands(service, host, message, NOW)


def test_entries_are_newest_first():
    raw = [
        ("1800000000000-0", {"host": "a", "message": "old"}),
        ("1800000005000-0", {"host": "b", "message": "new"}),
    ]
    assert entries("web", raw) == [
        ErrorEntry("web", NOW + 5, "b", "new"),
        ErrorEntry("web", NOW, "a", "old"),
    ]


def test_histogram_counts_per_bucket_oldest_first_and_ignores_older():
    found = [ErrorEntry("s", NOW - s, "h", "m") for s in (0, 10, 3599, 3600, 7300, 99_999)]
    assert histogram(found, NOW, 3600, 3) == [1, 1, 3]


def test_sparkline():
    assert sparkline([0, 0]) == "  "
    assert sparkline([0, 1, 8]) == " ▁█"
