"""What Redis holds for settings, parsed: a namespace (its revision, schema and settings)
and its history. Records are never trusted blindly: a malformed one is a ValueError that
names it. The client's read path (``Client.config``) imports only this module."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodstate.client.fenced import ProdstateError
from prodstate.settings.keys import REVISION, SCHEMA, VALUE, namespace_key

if TYPE_CHECKING:
    from prodstate.client.fenced import Client


class Refused(Exception):
    """A change or a question the rules refuse (its schema, a bound, no such namespace,
    key or version): nothing is written."""


class UnknownNamespace(ProdstateError, LookupError):
    """The namespace has no schema and was never declared free-form: it does not exist."""


class _Absent:
    """What a key holds before it is set and after it is unset (not JSON null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Stamp:
    """Who made a change, when (Unix time), from which machine, and why."""

    who: str
    host: str
    at: float
    reason: str


@dataclass(frozen=True)
class Setting:
    """One key's value and the change that set it (``version``: the namespace's revision
    then)."""

    key: str
    value: Any
    version: int
    stamp: Stamp


@dataclass(frozen=True)
class SchemaRecord:
    """A namespace's schema (None: free-form) and the change that set it."""

    schema: Any
    version: int
    stamp: Stamp

    @property
    def free_form(self) -> bool:
        """True if any JSON value within the bounds is accepted."""
        return self.schema is None


@dataclass(frozen=True)
class Namespace:
    """A namespace as one read of its hash shows it; every change bumps ``revision``."""

    name: str
    revision: int
    schema: SchemaRecord
    settings: dict[str, Setting]

    def document(self) -> dict[str, Any]:
        """The settings as one JSON object, what the schema describes."""
        return {key: s.value for key, s in sorted(self.settings.items())}

    def version(self, key: str) -> int:
        """The revision at which ``key`` last changed (0: it is not set)."""
        found = self.settings.get(key)
        return 0 if found is None else found.version

    @classmethod
    def parse(cls, name: str, raw: Mapping[str, str]) -> Namespace | None:
        """The namespace in its hash's fields ``raw``; None if it does not exist."""
        if REVISION not in raw:
            return None
        revision = _int(raw[REVISION], f"namespace {name}: revision")
        schema_doc = _object(raw.get(SCHEMA), f"namespace {name}: schema record")
        schema = SchemaRecord(
            schema_doc.get("schema"),
            _int(schema_doc.get("version"), f"namespace {name}: schema version"),
            _stamp(schema_doc, f"namespace {name}: schema record"),
        )
        settings = {}
        for field, text in raw.items():
            if field.startswith(VALUE):
                key = field[len(VALUE) :]
                what = f"setting {name}/{key}"
                doc = _object(text, what)
                if "value" not in doc:
                    raise ValueError(f"{what}: malformed record (no value)")
                version = _int(doc.get("version"), f"{what}: version")
                settings[key] = Setting(key, doc["value"], version, _stamp(doc, what))
        return cls(name, revision, schema, settings)


class Settings(Mapping[str, Any]):
    """A namespace's settings as typed values (``settings["page_threshold"]`` is what was
    set: an int, a string, a list...), read at one revision."""

    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace.name
        #: The namespace's revision when read: every change bumps it.
        self.revision = namespace.revision
        self._settings = namespace.settings

    def __getitem__(self, key: str) -> Any:
        return self._settings[key].value

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._settings))

    def __len__(self) -> int:
        return len(self._settings)

    def version(self, key: str) -> int:
        """The revision at which ``key`` last changed; KeyError if it is not set."""
        return self._settings[key].version

    def record(self, key: str) -> Setting:
        """``key``'s value with who set it, when, where and why; KeyError if not set."""
        return self._settings[key]

    def __repr__(self) -> str:
        return f"Settings({self.namespace!r}, revision={self.revision}, {dict(self)!r})"


def read_settings(client: Client, namespace: str, max_staleness: float | None) -> Settings:
    """``namespace``'s settings from ``client``'s local Redis; UnknownNamespace if none,
    ProdstateError for a malformed record, StaleData if the copy is too old."""
    raw = client.read("HGETALL", namespace_key(namespace), max_staleness=max_staleness)
    try:
        found = Namespace.parse(namespace, raw)
    except ValueError as exc:
        raise ProdstateError(str(exc)) from None
    if found is None:
        raise UnknownNamespace(f"there is no settings namespace {namespace!r}")
    return Settings(found)


def _object(text: str | None, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        doc = None
    if not isinstance(doc, dict):
        raise ValueError(f"{what}: malformed record (not a JSON object)")
    return doc


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what}: malformed record ({value!r} is not a number)")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{what}: malformed record ({value!r} is not a number)") from None
    if number < 0:
        raise ValueError(f"{what}: malformed record ({number} is negative)")
    return number


def _stamp(doc: Mapping[str, Any], what: str) -> Stamp:
    try:
        at = float(doc.get("at"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: malformed record (no time)") from None
    return Stamp(str(doc.get("who", "")), str(doc.get("host", "")), at, str(doc.get("reason", "")))
