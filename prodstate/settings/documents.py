"""JSON from outside (a value on the command line, a schema file), read within bounds:
its size and nesting are checked before it is parsed, so a hostile document costs
neither memory nor a recursion error, and NaN, infinities and duplicate keys are refused."""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any) -> str:
    """``value`` as compact, canonical JSON (keys sorted, ASCII)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def nesting(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (0 for a scalar); counted
    without parsing, brackets inside strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse(text: str, what: str, limit: int, depth: int) -> Any:
    """The JSON document ``text`` if it holds at most ``limit`` bytes as compact JSON and
    nests at most ``depth`` deep; ValueError in one line saying which bound or rule it
    breaks (``what`` names it: "the value", "the schema")."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not UTF-8 text") from None
    if size > 4 * limit:  # room for indentation; the compact form is checked below
        raise ValueError(f"{what} is {size} bytes long: at most {limit} as compact JSON")
    deepest = nesting(text)
    if deepest > depth:
        raise ValueError(f"{what} nests {deepest} levels deep: at most {depth}")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # a huge integer, NaN, a repeated key
        raise ValueError(f"{what} is not accepted JSON: {' '.join(str(exc).split())}") from None
    compact = len(dumps(value))
    if compact > limit:
        raise ValueError(f"{what} is {compact} bytes as compact JSON: at most {limit}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def check(value: Any, what: str, limit: int, depth: int) -> Any:
    """``value`` (already parsed) if it is JSON within ``limit`` bytes as compact JSON and
    ``depth`` levels of nesting; ValueError in one line if not."""
    try:
        text = dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not JSON: {' '.join(str(exc).split())}") from None
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text)} bytes as compact JSON: at most {limit}")
    deepest = nesting(text)
    if deepest > depth:
        raise ValueError(f"{what} nests {deepest} levels deep: at most {depth}")
    return value
