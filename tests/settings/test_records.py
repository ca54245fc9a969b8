"""A namespace parsed from its hash: typed values for the client, malformed records named."""

from __future__ import annotations

import pytest

from prodstate.settings.records import Namespace, Settings
from tests.settings.builders import Replica


def test_settings_are_typed_values_with_their_versions():
    ns = Replica("web")
    ns.schema(None)
    ns.set("threshold", 5)
    ns.set("ratio", 0.5)
    ns.set("on", True)
    ns.set("hosts", ["a", "b"])
    ns.set("label", "5")
    settings = Settings(ns.namespace())
    assert dict(settings) == {
        "threshold": 5,
        "ratio": 0.5,
        "on": True,
        "hosts": ["a", "b"],
        "label": "5",
    }
    assert type(settings["threshold"]) is int and type(settings["label"]) is str
    assert settings.revision == 6 and settings.version("threshold") == 2
    assert settings.record("on").stamp.who == "ann@h1"
    assert settings.get("missing", 3) == 3
    with pytest.raises(KeyError):
        settings.version("missing")


def test_a_missing_namespace_is_none():
    assert Namespace.parse("web", {}) is None


@pytest.mark.parametrize(
    ("field", "raw", "says"),
    [
        ("revision", "x", "revision: malformed"),
        ("schema", "[]", "schema record: malformed"),
        ("value:k", "{", "setting web/k: malformed"),
        ("value:k", '{"version": 1, "at": 1}', "no value"),
        ("value:k", '{"value": 1, "version": -1, "at": 1}', "negative"),
        ("value:k", '{"value": 1, "version": 1}', "no time"),
        pytest.param(
            "value:k",
            '{"value": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "not a JSON object",
            id="nested-past-the-parser",
        ),
    ],
)
def test_malformed_records_are_named(field, raw, says):
    ns = Replica("web")
    ns.schema(None)
    ns.set("k", 1)
    with pytest.raises(ValueError, match=says):
        Namespace.parse("web", {**ns.hash, field: raw})
