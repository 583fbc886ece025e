"""A DAG param's JSON schema as a fast check for the delivery path, with jsonschema's verdict and message.

``fastjsonschema`` compiles a schema into Python code (~4 times faster than ``jsonschema``'s validator for the HR
workflows' params, ~150 µs to ~40 µs per conf; docs/BENCHMARKS.md). Airflow validates params with ``jsonschema``,
so that stays the authority:

- a value the compiled code accepts is valid (it checks the same draft-07 keywords, and the formats are
  ``jsonschema``'s own ``FormatChecker`` functions, so ``idn-email`` and ``date`` mean what they mean to Airflow);
- a value it refuses is checked again by ``jsonschema``, whose message is the one reported (and whose "valid"
  wins, should the two ever disagree);
- a schema with keywords draft-07 does not know (``prefixItems``, ``dependentRequired``, ``unevaluated…``, …)
  is checked by ``jsonschema`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import fastjsonschema
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

#: Keywords of JSON Schema 2019-09/2020-12 that draft-07 (fastjsonschema's newest) would silently ignore.
_NEWER_KEYWORDS = frozenset({
    "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "prefixItems",
    "dependentRequired", "dependentSchemas", "unevaluatedItems", "unevaluatedProperties", "minContains",
    "maxContains", "$vocabulary",
})

#: A check: the error message for ``value``, or None when it is valid.
Check = Callable[[Any], str | None]


def _keywords(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        return set(schema).union(*(_keywords(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_keywords(value) for value in schema))
    return set()


@lru_cache(maxsize=1)
def _format_checker() -> tuple[FormatChecker, dict[str, Callable[[str], bool]]]:
    checker = FormatChecker()
    formats: dict[str, Callable[[str], bool]] = {name: partial(_conforms, checker, name) for name in checker.checkers}
    return checker, formats


def _conforms(checker: FormatChecker, name: str, value: str) -> bool:
    return checker.conforms(value, name)


_checks: dict[str, Check] = {}


def compile_check(schema: dict[str, Any]) -> Check:
    """The check of ``schema``, compiled once per distinct schema (a DAG's params are re-read every few seconds)."""
    key = json.dumps(schema, sort_keys=True, default=repr)
    check = _checks.get(key)
    if check is None:
        if len(_checks) >= 1024:
            _checks.clear()
        check = _checks[key] = _compile(schema)
    return check


def _compile(schema: dict[str, Any]) -> Check:
    checker, formats = _format_checker()
    validator = validator_for(schema)(schema, format_checker=checker)

    def authoritative(value: Any) -> str | None:
        error = next(iter(validator.iter_errors(value)), None)
        return None if error is None else error.message

    if _keywords(schema) & _NEWER_KEYWORDS:
        return authoritative
    compiled = {k: v for k, v in schema.items() if k != "$schema"}
    # A list of texts (the time zones: ~600) is a set lookup here; the compiled code compares value by value.
    enum = compiled.get("enum")
    texts = frozenset(enum) if isinstance(enum, list) and all(isinstance(v, str) for v in enum) else None
    if texts is not None:
        del compiled["enum"]
    try:
        # use_default=False: the compiled code must not fill defaults into the value it checks (the conf).
        fast = fastjsonschema.compile(compiled, formats=formats, use_default=False)
    except Exception:  # a schema it cannot compile (jsonschema accepted it: Airflow serialised the DAG)
        return authoritative

    def check(value: Any) -> str | None:
        try:
            fast(value)
        except fastjsonschema.JsonSchemaException:
            return authoritative(value)
        if texts is not None and not (isinstance(value, str) and value in texts):
            return authoritative(value)
        return None

    return check
