"""Deterministic instances of a JSON schema, filled from the material of a request.

What a structured-output answer of the sandbox's OpenAI API is made of (see :mod:`sandbox.openai.api`):
:func:`instance` returns a value VALID against the schema, computed only from the schema and the
:class:`Material` (the user messages), so the same request always gets the same answer:

- a property named ``K`` takes the value of the i-th occurrence of key ``K`` anywhere in the JSON objects
  embedded in the user messages (``i`` = the index of the array item it is in, 0 outside arrays), when that
  value is valid against the property's schema;
- an enum takes the option whose text appears first in the user messages (case-insensitive, whole words),
  else its first option; an array of enums takes every option that appears, in order of appearance, padded
  with the first options up to ``minItems``;
- an array of objects has as many items as its item's most frequent property name has occurrences (at least
  ``minItems``, at most ``maxItems``, or :data:`DEFAULT_MAX_ITEMS` without one), other arrays ``minItems`` items
  (at least one);
- ``anyOf`` with ``null`` (an ``Optional`` field) is null unless something in the material fills it;
- a string with nothing to copy is a short sentence naming the property (``format`` date-time, date, time,
  email, uuid and uri get a fixed value of that format; ``pattern`` is not honoured), a number or integer the
  value nearest to 0 within its bounds (and ``multipleOf``), a boolean ``false``.

Supported keywords: ``type`` (also a list), ``properties``, ``required``, ``additionalProperties``, ``items``,
``prefixItems``, ``minItems``/``maxItems``, ``enum``, ``const``, ``anyOf``/``oneOf`` (the first fitting
branch), ``allOf`` (merged), local ``$ref`` (``#/$defs/…``, ``#/definitions/…``, ``#``), ``minLength``/
``maxLength``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``/``multipleOf``.
:func:`conforms` is the matching validator (used to decide whether a value may be copied).
"""

from __future__ import annotations

import copy
import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

#: Items of an array of objects when the schema sets no ``maxItems``.
DEFAULT_MAX_ITEMS = 10
#: Past this depth optional parts are left out (null, ``minItems`` items): recursive schemas end.
SOFT_DEPTH = 8
#: Past this depth the schema cannot be instantiated (a required recursion).
MAX_DEPTH = 32

_MISSING = object()
_FORMATS = {"date-time": "2025-01-01T09:00:00Z", "date": "2025-01-01", "time": "09:00:00",
            "email": "someone@example.com", "uuid": "00000000-0000-4000-8000-000000000000",
            "uri": "https://example.com/"}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SchemaError(ValueError):
    """The schema cannot be instantiated (an unresolvable ``$ref``, an unknown type, endless recursion)."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# --- the material -------------------------------------------------------------------------------

def embedded_json(text: str) -> list[Any]:
    """The JSON objects and arrays embedded in ``text`` (a whole JSON document, or JSON within prose), in
    order; a JSON value inside another one is not listed again."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in ``value``, in document order (depth first, a key before its contents)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@dataclass(frozen=True)
class Material:
    """What an answer may be filled from: the user messages' text and every key's values in them."""

    text: str = ""
    occurrences: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_texts(cls, texts: list[str]) -> Material:
        occurrences: dict[str, list[Any]] = {}
        for text in texts:
            for document in embedded_json(text):
                for key, value in _walk(document):
                    occurrences.setdefault(key, []).append(value)
        return cls("\n".join(texts), occurrences)

    def value(self, key: str | None, index: int) -> Any:
        values = self.occurrences.get(key, []) if key is not None else []
        return values[index] if index < len(values) else _MISSING

    def mentions(self, option: Any) -> int | None:
        """Where the enum option's text first appears in the material's text (whole words, any case; ``_``
        and ``-`` also match a space), or None."""
        if isinstance(option, bool) or option is None:
            return None
        words = str(option).strip()
        if not words:
            return None
        spelled = re.escape(words).replace("_", "[_ -]").replace(r"\-", "[_ -]")
        match = re.search(rf"(?<!\w){spelled}(?!\w)", self.text, flags=re.IGNORECASE)
        return match.start() if match else None


# --- schema navigation ---------------------------------------------------------------------------

def _pointer(root: dict[str, Any], ref: str, path: tuple[str, ...]) -> dict[str, Any]:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise SchemaError(f"reference {ref!r} is not local to the schema", path)
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"reference {ref!r} can't be resolved", path)
        node = node[part]
    if not isinstance(node, dict):
        raise SchemaError(f"reference {ref!r} is not a schema", path)
    return node


def resolve(root: dict[str, Any], schema: Any, path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``schema`` with its ``$ref`` chain followed (sibling keywords of a ``$ref`` are kept) and a
    single-branch ``allOf`` or several object branches merged."""
    if schema is True or schema is None:
        return {}
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema must be an object, got {json.dumps(schema)}", path)
    seen: set[str] = set()
    while "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or ref in seen:
            raise SchemaError(f"reference {ref!r} refers to itself", path)
        seen.add(ref)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**_pointer(root, ref, path), **siblings}
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = resolve(root, part, path)
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            required = list(dict.fromkeys([*merged.get("required", []), *part.get("required", [])]))
            merged = {**part, **merged}
            if props:
                merged["properties"] = props
            if required:
                merged["required"] = required
        schema = merged
    return schema


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(t) for t in declared]
    if "properties" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema:
        return ["array"]
    return []


# --- validation ----------------------------------------------------------------------------------

def _type_ok(value: Any, name: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer()),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }.get(name, False)


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            return "T" in value.upper() and bool(datetime.fromisoformat(value.replace("Z", "+00:00")))
        if fmt == "date":
            return bool(date.fromisoformat(value)) and len(value) == 10
        if fmt == "time":
            return bool(time.fromisoformat(value.replace("Z", "+00:00")))
        if fmt == "uuid":
            return bool(uuid.UUID(value))
    except ValueError:
        return False
    if fmt == "email":
        return bool(_EMAIL_RE.match(value))
    if fmt == "uri":
        return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value))
    return True


def conforms(value: Any, schema: Any, root: dict[str, Any]) -> bool:
    """Whether ``value`` is valid against ``schema`` (the keywords above; ``format`` checked for the formats
    listed, ``pattern`` with :func:`re.search`)."""
    schema = resolve(root, schema)
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and not any((value == o and type(value) is type(o)) or
                                    (_type_ok(value, "number") and _type_ok(o, "number") and value == o)
                                    for o in schema["enum"]):
        return False
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema and not any(conforms(value, branch, root) for branch in schema[combinator]):
            return False
    types = _types(schema)
    if types and not any(_type_ok(value, t) for t in types):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                if not conforms(item, props[key], root):
                    return False
            elif extra is False or (isinstance(extra, dict) and not conforms(item, extra, root)):
                return False
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            return False
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items", True)
            if sub is False or not conforms(item, sub, root):
                return False
    elif isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if "format" in schema and not _format_ok(value, schema["format"]):
            return False
    elif _type_ok(value, "number"):
        if value < schema.get("minimum", -math.inf) or value > schema.get("maximum", math.inf):
            return False
        if value <= schema.get("exclusiveMinimum", -math.inf) or value >= schema.get("exclusiveMaximum", math.inf):
            return False
        step = schema.get("multipleOf")
        if step and not math.isclose(value / step, round(value / step)):
            return False
    return True


# --- generation ----------------------------------------------------------------------------------

def instance(schema: dict[str, Any], material: Material) -> Any:
    """A value valid against ``schema`` (the root of its ``$ref``s), filled from ``material``.

    Raises :class:`SchemaError` when the schema cannot be instantiated."""
    return _Generator(schema, material).value(schema, None, 0, (), 0)


class _Generator:
    def __init__(self, root: dict[str, Any], material: Material) -> None:
        self.root = root
        self.material = material

    def value(self, schema: Any, key: str | None, index: int, path: tuple[str, ...], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SchemaError(f"the schema nests deeper than {MAX_DEPTH} levels", path)
        schema = resolve(self.root, schema, path)
        copied = self.material.value(key, index)
        if copied is not _MISSING and conforms(copied, schema, self.root):
            return copy.deepcopy(copied)
        return self.generate(schema, key, index, path, depth)

    def generate(self, schema: dict[str, Any], key: str | None, index: int, path: tuple[str, ...],
                 depth: int) -> Any:
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            return self.pick(schema, path)
        branches = schema.get("anyOf", schema.get("oneOf"))
        if branches is not None:
            return self.choose([resolve(self.root, b, path) for b in branches], key, index, path, depth)
        types = _types(schema)
        if len(types) > 1:
            return self.choose([{**schema, "type": t} for t in types], key, index, path, depth)
        kind = types[0] if types else "string"
        if kind == "object":
            return self.object(schema, index, path, depth)
        if kind == "array":
            return self.array(schema, key, path, depth)
        if kind == "string":
            return self.string(schema, key, index)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer", path=path)
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        raise SchemaError(f"type {kind!r} is not a JSON Schema type", path)

    def pick(self, schema: dict[str, Any], path: tuple[str, ...]) -> Any:
        options = schema["enum"]
        if not isinstance(options, list) or not options:
            raise SchemaError("an enum needs at least one option", path)
        found = self.mentioned(options)
        return copy.deepcopy(found[0] if found else options[0])

    def mentioned(self, options: list[Any]) -> list[Any]:
        """The options the text mentions, in order of their first appearance."""
        places = [(self.material.mentions(o), i) for i, o in enumerate(options)]
        return [options[i] for place, i in sorted((p, i) for p, i in places if p is not None)]

    def choose(self, branches: list[dict[str, Any]], key: str | None, index: int, path: tuple[str, ...],
               depth: int) -> Any:
        real = [b for b in branches if _types(b) != ["null"]]
        nullable = len(real) < len(branches)
        if nullable and (not real or depth > SOFT_DEPTH or not any(self.has_source(b) for b in real)):
            return None
        error = SchemaError("anyOf needs at least one branch", path)
        for branch in sorted(real, key=lambda b: not self.has_source(b)):  # a branch with material first
            try:
                return self.generate(branch, key, index, path, depth)
            except SchemaError as exc:
                error = exc
        raise error

    def has_source(self, schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
        """Whether anything in the material could fill ``schema``: a property name that occurs, an enum
        option mentioned in the text."""
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return False
            seen = seen | {ref}
        try:
            schema = resolve(self.root, schema)
        except SchemaError:
            return False
        if "enum" in schema:
            return bool(self.mentioned(schema["enum"]))
        for name, sub in (schema.get("properties") or {}).items():
            if name in self.material.occurrences or (isinstance(sub, dict) and self.has_source(sub, seen)):
                return True
        subs = [schema.get("items"), *schema.get("prefixItems", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]
        return any(isinstance(s, dict) and self.has_source(s, seen) for s in subs)

    def object(self, schema: dict[str, Any], index: int, path: tuple[str, ...], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = set(schema.get("required", []))
        result: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or name in self.material.occurrences:
                result[name] = self.value(sub, name, index, (*path, "properties", name), depth + 1)
        for name in sorted(required - set(props)):
            extra = schema.get("additionalProperties", True)
            if extra is False:
                raise SchemaError(f"required property {name!r} is not in properties", path)
            result[name] = self.value(extra if isinstance(extra, dict) else {}, name, index,
                                      (*path, "properties", name), depth + 1)
        return result

    def array(self, schema: dict[str, Any], key: str | None, path: tuple[str, ...], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", DEFAULT_MAX_ITEMS if low <= DEFAULT_MAX_ITEMS else low))
        prefix = schema.get("prefixItems", [])
        items = resolve(self.root, schema.get("items", {}), (*path, "items")) if schema.get("items") is not False \
            else None
        if items is not None and "enum" in items:
            options = list(items["enum"])
            chosen = self.mentioned(options)[:high]
            chosen += [o for o in options if o not in chosen][:max(0, low - len(chosen))]
            while len(chosen) < low:
                chosen.append(options[0])
            return copy.deepcopy(chosen)
        if depth > SOFT_DEPTH:
            count = max(low, len(prefix))
        elif items is not None and items.get("properties"):
            frequency = max(len(self.material.occurrences.get(name, [])) for name in items["properties"])
            count = max(low, len(prefix), min(high, max(frequency, 1)))
        else:
            count = max(low, len(prefix), min(high, 1))
        if items is None:
            count = min(count, len(prefix))
        return [self.value(prefix[i] if i < len(prefix) else items, None, i, (*path, "items"), depth + 1)
                for i in range(count)]

    def string(self, schema: dict[str, Any], key: str | None, index: int) -> str:
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        subject = re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key or "answer")).strip().lower()
        text = f"Sandbox {subject or 'answer'}" + (f" {index + 1}" if index else "") + "."
        while len(text) < int(schema.get("minLength", 0)):
            text += " More detail."
        return text[:int(schema["maxLength"])] if "maxLength" in schema else text


def _number(schema: dict[str, Any], *, integer: bool, path: tuple[str, ...]) -> int | float:
    """The value nearest to 0 within the bounds (open or closed) and on the ``multipleOf`` grid."""
    step = schema.get("multipleOf") or (1 if integer else None)
    low, low_open = schema.get("minimum", -math.inf), False
    if "exclusiveMinimum" in schema and schema["exclusiveMinimum"] >= low:
        low, low_open = schema["exclusiveMinimum"], True
    high, high_open = schema.get("maximum", math.inf), False
    if "exclusiveMaximum" in schema and schema["exclusiveMaximum"] <= high:
        high, high_open = schema["exclusiveMaximum"], True

    def inside(v: float) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    value: float = 0
    if not inside(0):
        above = low >= 0  # the range lies above 0 (else below)
        if step:
            value = math.floor(low / step) * step if above else math.ceil(high / step) * step
            for _ in range(3):
                if inside(value):
                    break
                value += step if above else -step
        elif math.isfinite(low) and math.isfinite(high):
            value = (low + high) / 2
        else:
            value = (low + 1 if low_open else low) if above else (high - 1 if high_open else high)
    if not inside(value):
        raise SchemaError("no number satisfies the bounds", path)
    return int(value) if integer else value
