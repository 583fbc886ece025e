"""The params' compiled checks (include/officeflow/param_schema.py) agree with jsonschema, which Airflow uses."""

from __future__ import annotations

import pytest
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from include.officeflow.param_schema import compile_check

SCHEMAS = [
    {"type": "string", "minLength": 1, "format": "idn-email"},
    {"type": ["null", "string"], "format": "date"},
    {"type": "integer", "minimum": 0, "maximum": 3650},
    {"type": "string", "enum": ["google", "microsoft", "okta"], "values_display": {"google": "Google"}},
    {"type": ["null", "array"], "items": {"type": "string", "minLength": 1, "maxLength": 250}, "uniqueItems": True,
     "section": "Run details", "examples": ["laptop"]},
    {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}, "required": ["a"]},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},  # 2020-12: jsonschema alone
    {"type": "object", "dependentRequired": {"a": ["b"]}},
]
VALUES = [None, "", "ada@example.com", "ada", "a@b", "2026-12-01", "2026-13-45", 0, -1, 3651, 12, True, 1.5,
          "google", "okta ", [], ["laptop"], ["laptop", "laptop"], [""], [1, "x"], ["x", 1], {}, {"a": "y"},
          {"a": 1}, {"a": "y", "b": 2}]


def _jsonschema_message(schema, value):
    error = next(iter(validator_for(schema)(schema, format_checker=FormatChecker()).iter_errors(value)), None)
    return None if error is None else error.message


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(sorted(s))[:60] for s in SCHEMAS])
def test_the_verdict_and_message_are_jsonschemas(schema):
    check = compile_check(schema)
    for value in VALUES:
        assert check(value) == _jsonschema_message(schema, value), value


def test_the_checked_value_is_not_changed():
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    value: dict = {}
    assert compile_check(schema)(value) is None
    assert value == {}


def test_a_schema_is_compiled_once():
    schema = {"type": "string", "minLength": 3}
    assert compile_check(schema) is compile_check(dict(reversed(list(schema.items()))))


def test_a_long_list_of_texts_is_checked_as_jsonschema_does():
    schema = {"type": "string", "enum": [f"Zone/{n}" for n in range(600)]}
    check = compile_check(schema)
    for value in ("Zone/0", "Zone/599", "Zone/600", "", 0, None, ["Zone/0"]):
        assert check(value) == _jsonschema_message(schema, value), value
