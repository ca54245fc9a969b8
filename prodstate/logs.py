"""Structured logs: ``key=value`` for people, JSON lines on request.

Every agent log line carries its message (for decisions, the one-line
reason) and the fields passed with ``extra=``.
"""

from __future__ import annotations

import logging
import sys

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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("kazoo").setLevel(logging.WARNING)
