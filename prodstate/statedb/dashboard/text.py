"""Record text made safe to look at (pure): control, invisible and bidirectional characters
shown as visible escapes, and long fields folded to a head with the rest on demand."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Characters shown as text: newlines and tabs (kept), everything else printable.
KEPT = frozenset("\n\t")
#: Format characters that reorder or hide text (bidi overrides, zero-width joiners, BOM).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_NAMED = {"\r": "\\r", "\x1b": "\\e", "\x00": "\\0"}


def escape_of(char: str) -> str | None:
    """How ``char`` is shown when it must not be itself (``\\r``, ``\\x07``, ``U+202E``);
    None for a character shown as is."""
    if char in KEPT:
        return None
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
        return f"\\x{code:02x}"
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
        return f"U+{code:04X}"
    return None


def segments(text: str) -> list[tuple[str, bool]]:
    """``text`` as runs of (plain text, False) and (an escape, True), in order."""
    runs: list[tuple[str, bool]] = []
    plain: list[str] = []
    for char in text:
        shown = escape_of(char)
        if shown is None:
            plain.append(char)
            continue
        if plain:
            runs.append(("".join(plain), False))
            plain = []
        runs.append((shown, True))
    if plain:
        runs.append(("".join(plain), False))
    return runs


@dataclass(frozen=True)
class Folded:
    """A field as shown: its head, and whether more of it is hidden behind the head."""

    head: str
    full: str
    folded: bool
    lines: int

    @property
    def summary(self) -> str:
        """``12 lines, 3,400 characters`` (what unfolding shows)."""
        lines = f"{self.lines} lines, " if self.lines > 1 else ""
        return f"{lines}{len(self.full):,} characters"


def fold(text: str, chars: int = 160, lines: int = 2) -> Folded:
    """``text`` cut to its first ``lines`` lines and ``chars`` characters when longer."""
    count = text.count("\n") + 1
    head = "\n".join(text.split("\n")[:lines])
    if len(head) > chars:
        head = head[:chars]
    folded = head != text
    return Folded(head.rstrip() + ("…" if folded else ""), text, folded, count)
