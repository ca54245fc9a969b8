"""When to render after changes: consul-template's ``wait = "min:max"`` (pure).

A burst of changes is rendered once: ``min`` seconds after the last change of the burst
(quiet for that long), but never later than ``max`` seconds after its first, so a steady
stream of changes still renders every ``max`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from prodstate.core.durations import parse_span


@dataclass(frozen=True)
class Wait:
    """Quiet time wanted after a change, and the longest a change waits, in seconds."""

    min: float = 0.0
    max: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("wait times must be finite")
        if not 0 <= self.min <= self.max:
            raise ValueError(f"wait needs 0 <= min <= max, got {self.min:g}:{self.max:g}")

    @classmethod
    def parse(cls, text: str) -> Wait:
        """``"2s:10s"``, ``"500ms:2s"``, or ``"2s"`` (max four times min, as consul-template);
        ``"0"`` renders at once. ValueError naming the text otherwise."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"wait {text!r} is not MIN[:MAX] (like 2s:10s)")
        low, sep, high = text.partition(":")
        minimum = parse_seconds(low)
        maximum = parse_seconds(high) if sep else 4 * minimum
        try:
            return cls(minimum, maximum)
        except ValueError as exc:
            raise ValueError(f"wait {text!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.min:g}s:{self.max:g}s"


def parse_seconds(text: str) -> float:
    """A duration: ``0``, ``250ms``, ``2s``, ``1m``."""
    text = text.strip().lower()
    if text in ("0", "0s", "0ms"):
        return 0.0
    if text.endswith("ms"):
        number = text[:-2].strip()
        try:
            value = float(number) / 1000
        except ValueError:
            raise ValueError(f"{text!r} is not a duration (like 250ms, 2s, 1m)") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{text!r} is not a duration (like 250ms, 2s, 1m)")
        return value
    return parse_span(text)


@dataclass(frozen=True)
class Debounce:
    """Pending changes of one template, fed with monotonic times."""

    wait: Wait
    #: First and last change of the burst not rendered yet (None: nothing pending).
    first: float | None = None
    last: float | None = None
    #: Changes in the pending burst.
    changes: int = 0

    @property
    def pending(self) -> bool:
        """True if a change waits to be rendered."""
        return self.first is not None

    def changed(self, now: float, count: int = 1) -> Debounce:
        """This state after ``count`` changes, the last seen at ``now``."""
        first = self.first if self.first is not None else now
        return replace(self, first=first, last=now, changes=self.changes + count)

    def due_at(self) -> float | None:
        """When the pending burst is to be rendered (None: nothing pending)."""
        if self.first is None or self.last is None:
            return None
        return min(self.last + self.wait.min, self.first + self.wait.max)

    def due(self, now: float) -> bool:
        """True if the pending burst is to be rendered at ``now``."""
        at = self.due_at()
        return at is not None and now >= at

    def rendered(self) -> Debounce:
        """Nothing pending any more (the burst was rendered, or judged unchanged)."""
        return replace(self, first=None, last=None, changes=0)
