"""Endpoint mappings: parsed once per process, and a plain field path gives what JMESPath's interpreter gives."""

from __future__ import annotations

import jmespath
import pytest

from include.officeflow import mapping
from include.officeflow.mapping import MappingError, apply_mapping

DOCUMENTS = [
    {"a": {"b": {"c": "deep"}}},
    {"a": {"b": {"c": {"d": 2}}}},
    {"a": [1, 2]},
    {"a": "text"},
    {"a": None},
    {"a": {"b": [1]}},
    {"a": {"b": 0}},
    {"a": {"b": False}},
    {"a": {"b": ""}},
    {"a-b": {"c": 3}},
    {},
]
EXPRESSIONS = ["a", "a.b", "a.b.c", '"a-b".c', "a[0]", "a.b[0]", "a.*", "a || `\"default\"`"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=range(len(DOCUMENTS)))
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_every_expression_maps_as_jmespath_evaluates_it(expression, document):
    expected = jmespath.search(expression, document)
    conf = apply_mapping({"param": expression}, document)
    if expected is None or expected == "":
        assert "param" not in conf  # an empty value leaves the param to its default
    else:
        assert conf == {"param": expected}


def test_a_mapping_is_parsed_once(monkeypatch):
    calls = []
    real = jmespath.compile
    monkeypatch.setattr(mapping.jmespath, "compile", lambda expression: calls.append(expression) or real(expression))
    own = {"first_name": "fields.firstName", "employee_id": "id", "parsed_once_check": "fields.lastName"}
    for index in range(50):
        assert apply_mapping(own, {"id": index, "fields": {"firstName": "Ada", "lastName": "L"}}) == {
            "first_name": "Ada", "employee_id": str(index), "parsed_once_check": "L"}
    assert sorted(calls) == sorted(own.values())


@pytest.mark.parametrize("expression", ["", "   ", ["a"], {"a": "b"}, 3, "a[["])
def test_a_bad_expression_is_refused_by_name(expression):
    with pytest.raises(MappingError) as refused:
        apply_mapping({"email": expression}, {"a": 1})
    assert refused.value.field == "email"
