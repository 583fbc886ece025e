"""The rules OpenAI applies to a ``response_format`` JSON schema before answering (Structured Outputs).

Every schema (strict or not) must be a JSON object whose ``$ref``s resolve inside it and whose types are JSON
Schema types. With ``"strict": true`` also, as OpenAI documents for Structured Outputs: the root is
``"type": "object"`` (not ``anyOf``), and every object sets ``"additionalProperties": false`` and lists every
key of ``properties`` in ``required`` (an optional field is a required one that may be null). The first
problem found is reported in OpenAI's words, with the context path (``In context=('properties', 'x'), …``).

Not checked: OpenAI's size limits (properties, nesting depth, enum values, total string length) and its list
of unsupported keywords.
"""

from __future__ import annotations

from typing import Any

from sandbox.openai.instances import SchemaError, resolve

TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def problem(schema: Any, *, strict: bool) -> str | None:
    """The first problem OpenAI would report for this schema, without the ``Invalid schema for
    response_format 'name': `` prefix; None when it is acceptable."""
    if not isinstance(schema, dict):
        return "schema must be a JSON Schema object."
    if strict:
        kind = schema.get("type")
        if kind != "object" or "anyOf" in schema:
            shown = "anyOf" if "anyOf" in schema else kind
            return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{shown}\"'."
    try:
        _check(schema, schema, (), strict)
    except SchemaError as exc:
        return f"In context={exc.path!r}, {exc.message}."
    return None


def _check(root: dict[str, Any], node: Any, path: tuple[str, ...], strict: bool) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        raise SchemaError("schema must be a JSON Schema object", path)
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str):
            raise SchemaError("'$ref' must be a string", path)
        resolve(root, {"$ref": ref}, path)  # it resolves; what it refers to is checked where it stands
    declared = node.get("type")
    for kind in declared if isinstance(declared, list) else [declared] if declared is not None else []:
        if kind not in TYPES:
            raise SchemaError(f"type '{kind}' is not a valid JSON Schema type", path)
    properties = node.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise SchemaError("'properties' must be an object", path)
    is_object = declared == "object" or (isinstance(declared, list) and "object" in declared) or properties is not None
    if strict and is_object:
        if node.get("additionalProperties") is not False:
            raise SchemaError("'additionalProperties' is required to be supplied and to be false", path)
        required = node.get("required")
        missing = [k for k in properties or {} if not isinstance(required, list) or k not in required]
        if missing:
            raise SchemaError("'required' is required to be supplied and to be an array including every key in "
                              f"properties. Missing '{missing[0]}'", path)
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise SchemaError("'enum' must be a non-empty array", path)
    for name, sub in (properties or {}).items():
        _check(root, sub, (*path, "properties", name), strict)
    for keyword in ("items", "additionalProperties", "not"):
        if isinstance(node.get(keyword), dict):
            _check(root, node[keyword], (*path, keyword), strict)
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if keyword in node:
            if not isinstance(node[keyword], list) or not node[keyword]:
                raise SchemaError(f"'{keyword}' must be a non-empty array", path)
            for i, sub in enumerate(node[keyword]):
                _check(root, sub, (*path, keyword, str(i)), strict)
    for keyword in ("$defs", "definitions"):
        for name, sub in (node.get(keyword) or {}).items():
            _check(root, sub, (*path, keyword, name), strict)
