"""The error answers of every operation in the gateway's OpenAPI document (``/officeflow/api-docs/openapi.json``).

Every 4xx and 5xx has one shape (errors.py): ``{"error": {"message", "code", "correlationId"}}``, some with more
members (``problems``, ``part``...). FastAPI documents none of it: its 422 is its own ``{"detail": [...]}`` (which
errors.py replaces), and the answers of dependencies (sign-in, permissions) and of a route's ``ApiError`` are not
declared. So, after the routes' own ``responses=``, each operation gets:

- the error shape as the body of every error answer it declares without a body, and of its 422;
- 400 and 422 where it takes a JSON body (400: the body could not be read at all, e.g. not UTF-8);
- 401 and 403 where it needs a signed-in user (no or expired token; invalid token, permission, MFA enrolment);
- 404 where it has path parameters (no such object, or one in an organization the caller cannot see).

tests/integration/plugins/test_api_fuzz.py holds every answer to the document (schemathesis).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA = "Error"
_ERROR: dict[str, Any] = {
    "type": "object",
    "title": ERROR_SCHEMA,
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "code", "correlationId"],
        "properties": {"message": {"type": "string"}, "code": {"type": "string"},
                       "correlationId": {"type": "string"}},
        "additionalProperties": True,
    }},
}
_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_METHODS = ("get", "put", "post", "delete", "patch")
_DEFAULTS = {
    "400": "The body could not be read (not UTF-8, not JSON), or a refused value",
    "401": "Not signed in: no token, or an expired one",
    "403": "Not allowed: an invalid token, a missing permission, or two-factor enrolment required",
    "404": "No such object, or one in an organization the caller cannot see",
    "422": "Invalid parameters or body; the message names the first problem",
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(_REF)}}}


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the gateway's error answers to every operation of ``schema`` (an OpenAPI document), in place."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = _ERROR
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            wanted = []
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                wanted += ["400", "422"]
            if operation.get("security"):
                wanted += ["401", "403"]
            if "{" in path:
                wanted.append("404")
            for status in wanted:
                responses.setdefault(status, _error_response(_DEFAULTS[status]))
            for status, response in responses.items():
                if status[0] not in "45":
                    continue
                if _is_fastapi_validation_error(response):
                    response["content"] = {"application/json": {"schema": dict(_REF)}}
                    response["description"] = _DEFAULTS["422"]
                elif not response.get("content"):
                    response["content"] = {"application/json": {"schema": dict(_REF)}}
                response.setdefault("description", _DEFAULTS.get(status, "Error"))
    return schema


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with the error answers (built once, on the first request for it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
