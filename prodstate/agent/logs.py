"""Structured logs: ``key=value`` for people, JSON lines on request.

Every agent log line carries its message (for decisions, the one-line
reason) and the fields passed with ``extra=``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """``time level logger message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        head = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        tail = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        return f"{head} {tail}" if tail else head


def _quote(value: object) -> str:
    text = str(value)
    return repr(text) if (" " in text or "=" in text or not text) else text


class RepeatFilter(logging.Filter):
    """Let one message of the named libraries (by logger and message template) through
    once per ``interval`` seconds; the next one that passes carries ``repeated=N``, how
    many were held back. kazoo warns on every reconnection attempt, which while ZooKeeper
    is unreachable is several lines a second from every agent."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("kazoo",),
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.msg)
        now = self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        if held:
            record.repeated = held
        self._seen[key] = (now, 0)
        return True


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send prodstate's logs to stderr, as key=value text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("kazoo").setLevel(logging.WARNING)
