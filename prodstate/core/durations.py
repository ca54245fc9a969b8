"""Spans of time as people type and read them: ``90s``, ``30m``, ``2h``, ``1d`` (pure)."""

from __future__ import annotations

import re

_SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_SPAN_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_span(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` -> seconds (> 0); ValueError otherwise."""
    match = _SPAN_RE.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 90, 90s, 30m, 2h, 1d, 1w)")
    seconds = float(match.group(1)) * _SPAN_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be more than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h20m``, ``2d4h``: a coarse, readable span."""
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"
