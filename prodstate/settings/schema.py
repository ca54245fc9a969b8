"""Schemas (JSON Schema, checked with jsonschema) and the values they allow.

A namespace's schema describes the namespace as one JSON object, its settings' keys
mapping to their values: ``properties`` gives each key's type and range,
``additionalProperties: false`` refuses unknown keys (a typo), ``required`` keys cannot
be unset. A schema names its draft with ``$schema`` (default 2020-12) and is checked
against that draft's metaschema; formats jsonschema checks by itself are asserted.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, exceptions, validators
from referencing.exceptions import Unresolvable

from prodstate.settings.documents import dumps
from prodstate.statedb.keys import clip

#: Longest text of a refusal's parts (the schema's message, the rule's value).
SHOWN_MAX = 200
_UNKNOWN = object()


def _validator_class(schema: Any) -> Any:
    if not isinstance(schema, dict | bool):
        raise ValueError("the schema must be a JSON object (or true or false)")
    found = validators.validator_for(schema, default=_UNKNOWN)
    if found is _UNKNOWN:
        if isinstance(schema, dict) and "$schema" in schema:
            named = clip(str(schema["$schema"]), SHOWN_MAX)
            raise ValueError(f"the schema's $schema {named!r} names no draft jsonschema knows")
        return Draft202012Validator
    return found


def check_schema(schema: Any) -> None:
    """Nothing if ``schema`` is valid under its draft's metaschema; ValueError in one line
    (where in the schema, and what is wrong) if not."""
    cls = _validator_class(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/" + "/".join(str(p) for p in exc.path)
        raise ValueError(
            f"the schema is not valid JSON Schema at {where}: {_short(exc.message)}"
        ) from None
    except RecursionError:
        raise ValueError("the schema is not valid JSON Schema: it nests without end") from None


def violation(schema: Any, document: dict[str, Any]) -> str | None:
    """Why ``document`` (a namespace's settings) breaks ``schema``, in one line naming the
    path in the document and the rule of the schema; None if it conforms."""
    cls = _validator_class(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    try:
        error = exceptions.best_match(validator.iter_errors(document))
    except RecursionError:
        return "the schema refers to itself without end ($ref)"
    except Unresolvable as exc:
        return f"the schema refers to {_short(str(exc))}; only references within it resolve"
    if error is None:
        return None
    rule = "/" + "/".join(str(p) for p in error.schema_path)
    value = _short(dumps(error.validator_value))
    return f"{error.json_path}: {_short(error.message)} (schema rule {rule}: {value})"


def _short(text: str) -> str:
    return clip(" ".join(text.split()), SHOWN_MAX)
