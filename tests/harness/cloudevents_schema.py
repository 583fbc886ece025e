"""CloudEvents 1.0 JSON format, as a JSON Schema (draft 7) for checking the events OfficeFlow publishes.

It states the rules of the spec (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md, "Context
Attributes", and json-format.md) that the CloudEvents project's own JSON schema checks: the required attributes
``id``, ``source``, ``specversion`` and ``type`` as non-empty strings, ``source`` a URI-reference, ``time`` an
RFC 3339 timestamp, ``dataschema`` a URI, ``subject`` non-empty, ``data`` an object or a string and
``data_base64`` a string. On top of that schema it checks two spec rules that schema leaves out: attribute
(and so extension) names are lowercase letters and digits, at most 20 characters (``data_base64`` is a
member of the format, not an attribute); an event carries ``data``
or ``data_base64``, never both. Formats are checked (``rfc3339-validator``, ``rfc3986-validator``).
"""

from __future__ import annotations

from typing import Any

import jsonschema

NON_EMPTY = {"type": "string", "minLength": 1}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "CloudEvents 1.0 (JSON format)",
    "type": "object",
    "required": ["id", "source", "specversion", "type"],
    "propertyNames": {"pattern": "^([a-z0-9]{1,20}|data_base64)$"},  # data_base64: a member, not an attribute
    "properties": {
        "id": NON_EMPTY,
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "specversion": {"const": "1.0"},
        "type": NON_EMPTY,
        "datacontenttype": NON_EMPTY,
        "dataschema": {"type": "string", "format": "uri"},
        "subject": NON_EMPTY,
        "time": {"type": "string", "format": "date-time"},
        "data": {"type": ["object", "string"]},
        "data_base64": {"type": "string", "contentEncoding": "base64"},
    },
    "not": {"required": ["data", "data_base64"]},
}

_VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def schema_errors(event: Any) -> list[str]:
    """Every way ``event`` breaks the CloudEvents JSON format (empty when it is a valid event)."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(event)'}: {error.message}"
            for error in _VALIDATOR.iter_errors(event)]
