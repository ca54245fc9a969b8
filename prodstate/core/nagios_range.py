"""Nagios threshold ranges, as the Monitoring Plugins guidelines define them.

=========  ==========================================  =================================
``10``     alert when the value is < 0 or > 10          (outside 0 .. 10)
``10:``    alert when the value is < 10                 (outside 10 .. +inf)
``~:10``   alert when the value is > 10                 (outside -inf .. 10)
``10:20``  alert when the value is < 10 or > 20         (outside 10 .. 20)
``@10:20`` alert when 10 <= value <= 20                 (inside 10 .. 20)
=========  ==========================================  =================================

The ends belong to the range: a value equal to an end does not alert (unless ``@``). An
empty start is 0, as in the Monitoring Plugins' own parser. Pure and standard library only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

#: The longest range text accepted.
MAX_TEXT = 64


class RangeError(ValueError):
    """A range that does not follow the syntax (the message says why)."""


class Range(NamedTuple):
    """``start .. end`` (``-inf``/``+inf`` for open ends); ``inside``: alert inside it.

    A named tuple rather than a dataclass: ``prodstate check`` loads this module, and
    ``dataclasses`` alone costs it more than 10 ms at every run."""

    start: float = 0.0
    end: float = math.inf
    inside: bool = False

    def alerts(self, value: float) -> bool:
        """Whether ``value`` raises the alert this range stands for."""
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def __str__(self) -> str:
        """The range in the guidelines' syntax (what perfdata carries), e.g. ``5``, ``~:10``."""
        start = "~" if self.start == -math.inf else _number(self.start)
        end = "" if self.end == math.inf else _number(self.end)
        text = end if start == "0" and end else f"{start}:{end}"
        return f"@{text}" if self.inside else text


def _number(value: float) -> str:
    """The shortest text that reads back as ``value``: ``5``, ``0.5``, ``1e+20``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _bound(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RangeError(f"{whole!r} is not a range: {text!r} is not a number") from None
    if not math.isfinite(value) or text.strip() != text or "_" in text:
        raise RangeError(f"{whole!r} is not a range: {text!r} is not a number")
    return value


def parse_range(text: str) -> Range:
    """The range ``text`` (``[@]start:end``, ``[@]end``, ``~`` for -inf, empty end for
    +inf); RangeError if it is not one."""
    if len(text) > MAX_TEXT:
        raise RangeError(f"a range is at most {MAX_TEXT} characters")
    body = text[1:] if text.startswith("@") else text
    if not body:
        raise RangeError(f"{text!r} is not a range: it is empty")
    if ":" in body:
        start_text, _, end_text = body.partition(":")
        start = _bound(start_text, text) if start_text not in ("", "~") else 0.0
        if start_text == "~":
            start = -math.inf
        end = _bound(end_text, text) if end_text else math.inf
    else:
        start, end = 0.0, _bound(body, text)
    if start > end:
        raise RangeError(f"{text!r} is not a range: its start is above its end")
    return Range(start, end, inside=text.startswith("@"))
