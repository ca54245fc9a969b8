"""Namespaces and histories as Redis would hold them, built for the pure tests."""

from __future__ import annotations

from typing import Any

from prodstate.settings.changes import Write, schema_change, value_change
from prodstate.settings.history import Change, parse_entry
from prodstate.settings.records import ABSENT, Namespace, Stamp

BY = Stamp("ann@h1", "h1", 1_700_000_000.0, "tuning")
SCHEMA = {
    "type": "object",
    "properties": {
        "page_threshold": {"type": "integer", "minimum": 1},
        "email": {"type": "string", "format": "email"},
        "hosts": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["page_threshold"],
    "additionalProperties": False,
}


class Replica:
    """Applies writes to a dict standing for the namespace's hash and stream, as the root's
    script would (conditions first), so plans can be chained without Redis."""

    def __init__(self, name: str = "errors") -> None:
        self.name = name
        self.hash: dict[str, str] = {}
        self.stream: list[dict[str, str]] = []

    def namespace(self) -> Namespace | None:
        return Namespace.parse(self.name, self.hash)

    def changes(self) -> list[Change]:
        return [parse_entry(f) for f in self.stream]

    def apply(self, write: Write) -> None:
        for _, field, value in write.expect:
            assert self.hash.get(field) == value, (field, self.hash.get(field), value)
        for command in write.commands:
            verb, _, *words = command
            if verb == "HSET":
                self.hash.update(zip(words[::2], map(str, words[1::2]), strict=True))
            elif verb == "HDEL":
                for field in words:
                    self.hash.pop(field, None)
            elif verb == "XADD":
                maxlen, fields = int(words[1]), words[3:]
                self.stream.append(dict(zip(fields[::2], fields[1::2], strict=True)))
                del self.stream[:-maxlen]

    def schema(self, schema: Any) -> Change:
        write = schema_change(self.namespace(), self.name, schema, BY)
        self.apply(write)
        return write.change

    def set(self, key: str, value: Any = ABSENT, **kw: Any) -> Change:
        write = value_change(self.namespace(), self.name, key, value, BY, **kw)
        self.apply(write)
        return write.change
