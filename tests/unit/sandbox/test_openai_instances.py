"""The JSON-schema instance generator of the sandbox's OpenAI API (sandbox/openai/instances.py) on its own.

Every generated instance is checked by an independent validator (the ``jsonschema`` library, Draft 2020-12)
and, where the schema comes from a pydantic model, by the model itself; the filling rules (copy the i-th
occurrence, pick enum options from the text, null for an Optional with nothing to fill it) are checked on
their values. ``strict.problem`` (OpenAI's schema rules) is checked here as well: it shares the navigation.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from sandbox.openai.instances import DEFAULT_MAX_ITEMS, Material, SchemaError, conforms, embedded_json, instance
from sandbox.openai.strict import problem


class Equipment(BaseModel):
    name: str
    category: Literal["laptop", "monitor", "phone"]
    quantity: int = Field(ge=1, le=5)
    note: str | None = None


class Owner(BaseModel):
    email: str
    since: datetime


class Request(BaseModel):
    items: list[Equipment] = Field(min_length=1, max_length=3)
    owner: Owner | None
    tags: list[Literal["urgent", "remote", "on_site"]]
    summary: str = Field(min_length=20, max_length=60)
    score: float = Field(gt=0, lt=1)


SCHEMA = to_strict_json_schema(Request)  # what openai's .parse() sends: $defs, anyOf-null, additionalProperties


def generate(schema: dict[str, Any], *texts: str) -> Any:
    value = instance(schema, Material.from_texts(list(texts)))
    jsonschema.Draft202012Validator(schema).validate(value)  # an independent validator agrees
    assert conforms(value, schema, schema)
    return value


def test_instance_of_a_pydantic_schema_is_valid_for_the_model_and_copies_the_ith_occurrence() -> None:
    text = ('New hire: Ada needs a Monitor and is remote. {"equipment": [{"name": "ThinkPad X1", "quantity": 2}, '
            '{"name": "Dell U2723", "quantity": 9, "note": "27 inch"}], "email": "ada@officeflow.test", '
            '"since": "2025-03-01T09:00:00Z"}')
    value = generate(SCHEMA, text)
    parsed = Request.model_validate_json(json.dumps(value))
    assert [i.name for i in parsed.items] == ["ThinkPad X1", "Dell U2723"]  # one item per occurrence of "name"
    assert parsed.items[0].quantity == 2
    assert parsed.items[1].quantity == 1  # 9 breaks le=5: not copied, the nearest valid value instead
    assert parsed.items[0].note == "27 inch" and parsed.items[1].note is None  # the i-th occurrence, literally
    assert {i.category for i in parsed.items} == {"monitor"}  # the only option the text mentions
    assert parsed.owner is not None and parsed.owner.email == "ada@officeflow.test"
    assert parsed.owner.since == datetime.fromisoformat("2025-03-01T09:00:00+00:00")
    assert parsed.tags == ["remote"]
    assert 20 <= len(parsed.summary) <= 60 and parsed.summary.startswith("Sandbox summary")
    assert 0 < parsed.score < 1


def test_nothing_to_fill_from_gives_minimal_valid_answers() -> None:
    value = generate(SCHEMA, "Please help.")
    parsed = Request.model_validate(value)
    assert len(parsed.items) == 1 and parsed.items[0].category == "laptop"  # the first option
    assert parsed.items[0].note is None and parsed.owner is None  # Optional with nothing to fill it: null
    assert parsed.tags == []


def test_same_request_same_answer() -> None:
    text = 'Ada, urgent, on site. {"name": "Ada", "note": "x"}'
    assert instance(SCHEMA, Material.from_texts([text])) == instance(SCHEMA, Material.from_texts([text]))


@pytest.mark.parametrize(("text", "expected"), [
    ("Our PHONE broke", "phone"),
    ("a monitor, then a laptop", "monitor"),  # the earliest mention wins
    ("smartphones and laptops only", "laptop"),  # whole words: "smartphones" is not "phone", "laptops" not
    ("nothing relevant", "laptop"),
])
def test_enum_takes_the_option_the_text_mentions_first(text: str, expected: str) -> None:
    schema = {"type": "object", "properties": {"kind": {"type": "string", "enum": ["laptop", "monitor", "phone"]}},
              "required": ["kind"], "additionalProperties": False}
    assert generate(schema, text) == {"kind": expected}


def test_enum_array_takes_every_mentioned_option_within_its_bounds() -> None:
    def tags(text: str, **bounds: int) -> Any:
        schema = {"type": "array", "items": {"enum": ["urgent", "remote", "on_site"]}, **bounds}
        return generate(schema, text)

    assert tags("Remote, and URGENT. Remote!") == ["remote", "urgent"]
    assert tags("on site please") == ["on_site"]  # "_" matches a space
    assert tags("nothing", minItems=2) == ["urgent", "remote"]
    assert tags("remote", minItems=2) == ["remote", "urgent"]
    assert tags("remote urgent on-site", maxItems=2) == ["remote", "urgent"]


def test_copies_only_values_valid_for_the_property() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["count", "when", "label"],
              "properties": {"count": {"type": "integer", "minimum": 3}, "when": {"type": "string", "format": "date"},
                             "label": {"type": "string", "maxLength": 4}}}
    assert generate(schema, '{"count": 7, "when": "2025-02-30", "label": "long label"}') == {
        "count": 7, "when": "2025-01-01", "label": "Sand"}
    assert generate(schema, '{"count": "7", "when": "2025-02-28", "label": "ok"}') == {
        "count": 3, "when": "2025-02-28", "label": "ok"}
    assert generate(schema, '{"count": true}')["count"] == 3  # a boolean is not an integer


def test_array_length_follows_the_material_within_bounds() -> None:
    item = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
            "additionalProperties": False}
    names = json.dumps([{"name": f"n{i}"} for i in range(15)])
    assert len(generate({"type": "array", "items": item}, names)) == DEFAULT_MAX_ITEMS
    assert [v["name"] for v in generate({"type": "array", "items": item, "maxItems": 2}, names)] == ["n0", "n1"]
    assert len(generate({"type": "array", "items": item, "minItems": 4}, '{"name": "a"}')) == 4
    assert generate({"type": "array", "items": {"type": "string"}, "minItems": 2}, "") == [
        "Sandbox answer.", "Sandbox answer 2."]
    assert generate({"type": "array", "items": {"type": "string"}, "maxItems": 0}, "") == []


def test_the_whole_value_of_a_property_is_copied_when_valid() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["tags", "address"],
              "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                             "address": {"type": "object", "properties": {"city": {"type": "string"}},
                                         "required": ["city"], "additionalProperties": False}}}
    assert generate(schema, 'x {"tags": ["a", "b"], "address": {"city": "Oslo"}} y') == {
        "tags": ["a", "b"], "address": {"city": "Oslo"}}
    value = generate(schema, '{"tags": ["a", "b", "c", "d"], "address": {"city": "Oslo", "zip": "0150"}}')
    assert value["tags"] == ["Sandbox answer."]  # four tags break maxItems: generated
    assert value["address"] == {"city": "Oslo"}  # the extra key breaks additionalProperties: built from "city"


@pytest.mark.parametrize("schema", [
    {"type": "integer", "minimum": 5, "maximum": 9},
    {"type": "integer", "exclusiveMinimum": 5},
    {"type": "integer", "maximum": -3, "multipleOf": 4},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": "number", "exclusiveMaximum": -2.5},
    {"type": "number", "minimum": 0.3, "multipleOf": 0.25},
    {"type": "string", "minLength": 40},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "email"},
    {"type": ["string", "null"]},
    {"type": ["integer", "boolean"]},
    {"const": {"fixed": [1, 2]}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
     "items": False},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"oneOf": [{"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}, {"type": "null"}]},
    {},
])
def test_every_supported_keyword_gives_a_valid_instance(schema: dict[str, Any]) -> None:
    value = generate(schema, "")
    if schema.get("format") == "uuid":
        UUID(value)


def test_recursive_schema_ends() -> None:
    class Node(BaseModel):
        label: str
        children: list[Node]
        parent: Node | None

    schema = to_strict_json_schema(Node)
    value = generate(schema, '{"label": "root", "children": [{"label": "leaf"}]}')
    Node.model_validate(value)
    assert value["label"] == "root"


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}, "required": ["x"]}, "can't be resolved"),
    ({"$ref": "https://example.com/schema.json"}, "not local"),
    ({"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"}, "refers to itself"),
    ({"type": "text"}, "not a JSON Schema type"),
    ({"type": "integer", "minimum": 5, "maximum": 3}, "no number"),
    ({"type": "object", "properties": {"self": {"$ref": "#"}}, "required": ["self"]}, "deeper than"),
])
def test_schemas_that_cannot_be_instantiated(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        instance(schema, Material())


def test_embedded_json_in_prose() -> None:
    text = 'See {"a": 1} and [2, {"b": "}"}] but not {broken: 1} or {"c": 3'
    assert embedded_json(text) == [{"a": 1}, [2, {"b": "}"}]]
    assert embedded_json('{"outer": {"inner": 1}}') == [{"outer": {"inner": 1}}]  # nested values once
    material = Material.from_texts(['{"k": 1, "x": {"k": 2}}', 'then [{"k": 3}]'])
    assert material.occurrences["k"] == [1, 2, 3]  # document order, across messages


@settings(max_examples=60, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=8)
    | st.sampled_from(["laptop", "urgent", "2025-01-01T00:00:00Z", "a@b.co"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["items", "name", "category", "quantity", "note", "owner", "email", "since", "tags",
                         "summary", "score", "other"]), inner, max_size=4),
    max_leaves=12))
def test_any_material_gives_a_valid_instance(material: Any) -> None:
    value = generate(SCHEMA, f"text {json.dumps(material)} remote laptop")
    Request.model_validate(value)


@pytest.mark.parametrize(("value", "schema"), [
    (1.0, {"type": "integer"}), (True, {"type": "integer"}), ("x", {"enum": ["x", 1]}), (1, {"enum": [True]}),
    ([1, "a"], {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}}),
    ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}),
    ({"a": 1, "b": 2}, {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}),
    (5, {"exclusiveMaximum": 5}), (0.75, {"multipleOf": 0.25}), (0.7, {"multipleOf": 0.25}),
    ("abc", {"pattern": "^a"}), ("abc", {"pattern": "^b"}), (None, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
])
def test_conforms_agrees_with_jsonschema(value: Any, schema: dict[str, Any]) -> None:
    assert conforms(value, schema, schema) == jsonschema.Draft202012Validator(schema).is_valid(value)


# --- OpenAI's schema rules (strict.problem) ---------------------------------------------------------

def test_the_schemas_openai_sends_pass_the_strict_rules() -> None:
    assert problem(SCHEMA, strict=True) is None
    assert problem({"type": "array", "items": {"type": "string"}}, strict=False) is None


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "array", "items": {"type": "string"}},
     "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
     "In context=(), 'additionalProperties' is required to be supplied and to be false."),
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}},
                                             "additionalProperties": False}},
      "required": ["a"], "additionalProperties": False},
     "In context=('properties', 'a'), 'required' is required to be supplied and to be an array including every "
     "key in properties. Missing 'b'."),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}, "required": ["a"],
      "additionalProperties": False},
     "In context=('properties', 'a'), reference '#/$defs/Nope' can't be resolved."),
    ({"type": "object", "properties": {"a": {"type": "str"}}, "required": ["a"], "additionalProperties": False},
     "In context=('properties', 'a'), type 'str' is not a valid JSON Schema type."),
])
def test_strict_rules_name_the_first_problem(schema: dict[str, Any], expected: str) -> None:
    assert problem(schema, strict=True) == expected


def test_non_strict_schemas_need_only_be_well_formed() -> None:
    assert problem({"type": "object", "properties": {"a": {"type": "string"}}}, strict=False) is None
    assert problem({"type": "object", "properties": {"a": {"type": "strin"}}}, strict=False) == (
        "In context=('properties', 'a'), type 'strin' is not a valid JSON Schema type.")
    assert problem(["not", "a", "schema"], strict=False) == "schema must be a JSON Schema object."
