"""Schemas checked against their metaschema, and refusals that name the path and the rule."""

from __future__ import annotations

import pytest

from prodstate.settings.schema import check_schema, violation
from tests.settings.builders import SCHEMA


def test_a_conforming_namespace_passes():
    assert violation(SCHEMA, {"page_threshold": 5, "hosts": ["a", "b"]}) is None


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            {"page_threshold": 0},
            "$.page_threshold: 0 is less than the minimum of 1 "
            "(schema rule /properties/page_threshold/minimum: 1)",
        ),
        (
            {"page_threshold": "5"},
            "$.page_threshold: '5' is not of type 'integer' "
            '(schema rule /properties/page_threshold/type: "integer")',
        ),
        (
            {"page_threshold": 5, "page_treshold": 6},
            "$: Additional properties are not "
            "allowed ('page_treshold' was unexpected) (schema rule /additionalProperties: false)",
        ),
        ({}, "$: 'page_threshold' is a required property"),
        ({"page_threshold": 1, "email": "nobody"}, "$.email: 'nobody' is not a 'email'"),
        ({"page_threshold": 1, "hosts": ["a", 2]}, "$.hosts[1]: 2 is not of type 'string'"),
    ],
)
def test_a_violation_names_the_path_and_the_rule(document, says):
    assert violation(SCHEMA, document).startswith(says)


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "nope"}, "not valid JSON Schema at /type"),
        ({"pattern": "("}, "not valid JSON Schema at /pattern: '(' is not a 'regex'"),
        ({"$schema": "http://example.com/mine"}, "names no draft jsonschema knows"),
        ([1], "must be a JSON object"),
        (None, "must be a JSON object"),
    ],
)
def test_invalid_schemas_are_refused(schema, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace("/", "/")):
        check_schema(schema)


def test_earlier_drafts_are_checked_by_their_own_metaschema():
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "minimum": 1,
        "exclusiveMinimum": True,
    }
    check_schema(draft4)
    assert "less than or equal to the minimum" in violation(draft4, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exclusiveMinimum"):
        check_schema({**draft4, "exclusiveMinimum": 3})


def test_endless_and_remote_references_are_refusals_not_crashes():
    assert "without end" in violation({"$ref": "#"}, {})
    remote = violation({"$ref": "https://example.com/s.json"}, {})
    assert "only references within it resolve" in remote
