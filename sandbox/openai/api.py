"""OpenAI emulation: the Chat Completions and Models endpoints of the OpenAI API, as the ``openai`` client calls them.

Mounted under ``/openai``: the client's ``base_url`` (the Airflow connection's host) is ``<sandbox>/openai/v1``.

- **Auth**: ``Authorization: Bearer <key>`` against ``Credentials.extra["openai_api_keys"]``; otherwise 401
  (``invalid_api_key`` for a wrong key; OpenAI's "You didn't provide an API key…" with code null for none).
- **Errors** in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` with an ``x-request-id``
  header: 400 ``invalid_request_error`` for a body that is not JSON, an unknown argument, a missing or empty
  ``messages``, a bad role or content, out-of-range ``temperature``/``top_p``/``n``/``max_completion_tokens``,
  an unknown ``response_format`` type, a ``json_schema`` without a valid name or with a schema OpenAI refuses
  (:mod:`sandbox.openai.strict`), ``json_object`` without the word "json" in the messages, a prompt over the
  model's context window (``context_length_exceeded``); 404 ``model_not_found``; an unknown ``/v1`` URL is
  404 "Invalid URL (POST /v1/…)". Injected 429s are ``rate_limit_exceeded`` (type ``requests``) with
  ``Retry-After`` (1 s unless the fault sets it), injected 5xx ``server_error``.
- ``POST /v1/chat/completions``: ``model``, ``messages`` (system / developer / user / assistant / tool;
  string content or text parts), ``response_format`` text / json_object / json_schema (strict or not),
  ``max_completion_tokens`` or ``max_tokens`` (a longer answer is cut there with ``finish_reason: "length"``),
  ``temperature``, ``top_p``, ``n`` (n identical choices), ``seed``, ``user``, ``metadata``, ``store`` … are
  accepted; ``stream``, ``tools``/``functions`` and audio are not emulated (400). The answer is a
  ``chat.completion`` whose content :mod:`sandbox.openai.answers` computes from the request alone (same request,
  same content), ``model`` the snapshot the alias stands for (``gpt-4o-mini`` → ``gpt-4o-mini-2024-07-18``)
  and ``usage`` estimated at 4 characters a token.
- ``GET /v1/models``, ``GET /v1/models/{model}``: :data:`MODELS` (aliases and snapshots).
- Sandbox-only: ``POST /openai/_sandbox/faults {"kind": "invalid_json" | "schema_violation", "count": N}``: the
  next N answers' content is not JSON, or is JSON the request's schema refuses (a required property
  missing), with ``finish_reason: "stop"`` as a misbehaving model would; ``DELETE`` drops them.

State (``GET /_sandbox/state/openai``): ``requests`` (every chat request body as received, also refused ones,
last 200), ``answers`` (id, model, content, finish_reason, usage and fault of each answer, last 200),
``faults`` (pending answer faults).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.core import Credentials, SandboxError, SandboxState, Service
from sandbox.openai.answers import (
    broken,
    json_object_answer,
    message_text,
    prompt_tokens,
    schema_answer,
    text_answer,
    tokens,
)
from sandbox.openai.instances import SchemaError
from sandbox.openai.strict import problem

KEPT = 200

#: Model id -> (snapshot the id answers as, context window, max output tokens, created). Snapshots are models too.
MODELS: dict[str, tuple[str, int, int, int]] = {
    "gpt-4o-mini": ("gpt-4o-mini-2024-07-18", 128_000, 16_384, 1_721_172_741),
    "gpt-4o": ("gpt-4o-2024-08-06", 128_000, 16_384, 1_715_367_049),
    "gpt-4.1": ("gpt-4.1-2025-04-14", 1_047_576, 32_768, 1_744_316_542),
    "gpt-4.1-mini": ("gpt-4.1-mini-2025-04-14", 1_047_576, 32_768, 1_744_318_173),
    "gpt-4.1-nano": ("gpt-4.1-nano-2025-04-14", 1_047_576, 32_768, 1_744_321_707),
}
for _alias, (_snapshot, _window, _output, _created) in list(MODELS.items()):
    MODELS[_snapshot] = (_snapshot, _window, _output, _created)

#: Every argument of the Chat Completions API; anything else is "Unrecognized request argument".
ARGUMENTS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
NOT_EMULATED = ("stream", "stream_options", "tools", "tool_choice", "functions", "function_call", "audio",
                "prediction", "web_search_options")
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
CONTENT_REQUIRED = ("system", "user", "developer", "tool")
FORMAT_TYPES = ("text", "json_object", "json_schema")
SCHEMA_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FAULT_KINDS = ("invalid_json", "schema_violation")

NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
          "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
          "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
          "key from https://platform.openai.com/account/api-keys.")
BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
            "have trouble figuring out how to fix this, please contact us through our help center at "
            "help.openai.com.)")

router = APIRouter()


# --- errors -------------------------------------------------------------------------------------

def api_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
              kind: str = "invalid_request_error") -> SandboxError:
    """An error OpenAI would answer: ``kind`` is the error's ``type``."""
    return SandboxError(status, message, reason=code, body={"type": kind, "param": param})


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    headers = {"x-request-id": f"req_{secrets.token_hex(16)}"}
    if exc.reason == "injected" or exc.body is None:  # injected faults and errors raised with a bare status
        if exc.status == 429:
            headers["Retry-After"] = "1"
            error = {"message": "Rate limit reached for requests", "type": "requests",
                     "param": None, "code": "rate_limit_exceeded"}
        elif exc.status >= 500:
            error = {"message": "The server had an error while processing your request. Sorry about that!",
                     "type": "server_error", "param": None, "code": None}
        else:
            error = {"message": exc.message, "type": "invalid_request_error", "param": None, "code": None}
        return {"error": error}, headers
    return {"error": {"message": exc.message, "type": exc.body.get("type", "invalid_request_error"),
                      "param": exc.body.get("param"), "code": exc.reason}}, headers


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _invalid_type(param: str, expected: str, value: Any) -> SandboxError:
    return api_error(400, f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
                     param=param, code="invalid_type")


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


# --- auth and state ------------------------------------------------------------------------------

def _authenticate(request: Request) -> None:
    credentials: Credentials = request.app.state.credentials
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise api_error(401, NO_KEY)
    if not any(secrets.compare_digest(key, accepted) for accepted in credentials.extra.get("openai_api_keys", [])):
        shown = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else key
        raise api_error(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _state(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("openai")


def _keep(state: SandboxState, data: dict[str, Any], name: str, entry: Any) -> None:
    with state.lock:
        kept = data.setdefault(name, [])
        kept.append(entry)
        del kept[:-KEPT]


def _take_fault(state: SandboxState, data: dict[str, Any]) -> str | None:
    with state.lock:
        pending = data.setdefault("faults", [])
        if not pending:
            return None
        fault = pending[0]
        fault["count"] -= 1
        if fault["count"] <= 0:
            pending.pop(0)
        return str(fault["kind"])


# --- request checks --------------------------------------------------------------------------------

def _model(body: dict[str, Any]) -> tuple[str, int, int, int]:
    model = body.get("model")
    if model is None:
        raise api_error(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    if model not in MODELS:
        raise api_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                        code="model_not_found")
    return MODELS[model]


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise api_error(400, "Missing required parameter: 'messages'.", param="messages",
                        code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise api_error(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                        "empty array instead.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise api_error(400, f"Missing required parameter: '{where}.role'.", param=f"{where}.role",
                            code="missing_required_parameter")
        if role not in ROLES:
            raise api_error(400, f"Invalid value: '{role}'. Supported values are: {_supported(ROLES)}.",
                            param=f"{where}.role", code="invalid_value")
        content = message.get("content")
        if content is None:
            if role in CONTENT_REQUIRED:
                raise api_error(400, f"Missing required parameter: '{where}.content'.", param=f"{where}.content",
                                code="missing_required_parameter")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    raise _invalid_type(f"{where}.content[{j}]", "an object", part)
                if part.get("type") == "text" and not isinstance(part.get("text"), str):
                    raise _invalid_type(f"{where}.content[{j}].text", "a string", part.get("text"))
        elif not isinstance(content, str):
            raise _invalid_type(f"{where}.content", "one of a string or array of objects", content)
    return messages


def _number(body: dict[str, Any], name: str, low: float, high: float, *, integer: bool = False) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _invalid_type(name, "an integer" if integer else "a number", value)
    word = "integer" if integer else "decimal"
    if value < low:
        raise api_error(400, f"Invalid '{name}': {word} below minimum value. Expected a value >= {low:g}, but got "
                        f"{value} instead.", param=name, code=f"{word}_below_min_value")
    if value > high:
        raise api_error(400, f"Invalid '{name}': {word} above maximum value. Expected a value <= {high:g}, but got "
                        f"{value} instead.", param=name, code=f"{word}_above_max_value")


def _response_format(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """The format's type and, for ``json_schema``, the schema."""
    fmt = body.get("response_format")
    if fmt is None:
        return "text", None
    if not isinstance(fmt, dict):
        raise _invalid_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind is None:
        raise api_error(400, "Missing required parameter: 'response_format.type'.", param="response_format.type",
                        code="missing_required_parameter")
    if kind not in FORMAT_TYPES:
        raise api_error(400, f"Invalid value: '{kind}'. Supported values are: {_supported(FORMAT_TYPES)}.",
                        param="response_format.type", code="invalid_value")
    if kind == "json_object":
        if not any("json" in message_text(m.get("content")).lower() for m in messages):
            raise api_error(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                            "type 'json_object'.", param="messages")
        return kind, None
    if kind == "text":
        return kind, None
    spec = fmt.get("json_schema")
    if spec is None:
        raise api_error(400, "Missing required parameter: 'response_format.json_schema'.",
                        param="response_format.json_schema", code="missing_required_parameter")
    if not isinstance(spec, dict):
        raise _invalid_type("response_format.json_schema", "an object", spec)
    name = spec.get("name")
    if name is None:
        raise api_error(400, "Missing required parameter: 'response_format.json_schema.name'.",
                        param="response_format.json_schema.name", code="missing_required_parameter")
    if not isinstance(name, str) or not SCHEMA_NAME_RE.match(name):
        raise api_error(400, "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a "
                        "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                        param="response_format.json_schema.name", code="invalid_value")
    schema = spec.get("schema", {})
    found = problem(schema, strict=spec.get("strict") is True)
    if found:
        raise api_error(400, f"Invalid schema for response_format '{name}': {found}", param="response_format")
    return kind, schema


# --- routes ------------------------------------------------------------------------------------

@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> JSONResponse:
    state, data = _state(request)
    raw = await request.body()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    _keep(state, data, "requests", body)
    _authenticate(request)
    if not isinstance(body, dict):
        raise api_error(400, BAD_JSON)
    unknown = sorted(set(body) - ARGUMENTS)
    if unknown:
        raise api_error(400, f"Unrecognized request argument{'s' if len(unknown) > 1 else ''} supplied: "
                        f"{', '.join(unknown)}")
    snapshot, window, max_output, _ = _model(body)
    messages = _messages(body)
    for name in NOT_EMULATED:
        if body.get(name) not in (None, False, [], {}):
            raise api_error(400, f"'{name}' is not emulated by the OfficeFlow sandbox.", param=name,
                            code="unsupported_parameter")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "n", 1, 128, integer=True)
    _number(body, "seed", -(2 ** 63), 2 ** 63 - 1, integer=True)
    _number(body, "max_completion_tokens", 1, max_output, integer=True)
    _number(body, "max_tokens", 1, max_output, integer=True)
    kind, schema = _response_format(body, messages)
    used = prompt_tokens(messages)
    if used > window:
        raise api_error(400, f"This model's maximum context length is {window} tokens. However, your messages "
                        f"resulted in {used} tokens. Please reduce the length of the messages.", param="messages",
                        code="context_length_exceeded")
    try:
        content = (schema_answer(schema, messages) if kind == "json_schema" and schema is not None else
                   json_object_answer(messages) if kind == "json_object" else text_answer(messages))
    except SchemaError as exc:
        name = body["response_format"]["json_schema"]["name"]
        raise api_error(400, f"Invalid schema for response_format '{name}': In context={exc.path!r}, "
                        f"{exc.message}.", param="response_format") from None
    fault = _take_fault(state, data)
    if fault:
        content = broken(fault, content, schema)
    finish_reason = "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and tokens(content) > limit:
        content, finish_reason = content[:limit * 4], "length"
    usage = {"prompt_tokens": used, "completion_tokens": tokens(content),
             "total_tokens": used + tokens(content),
             "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    digest = hashlib.sha256(raw).hexdigest()
    completion_id = f"chatcmpl-sbx{state.next_id():06d}{digest[:16]}"
    choice: dict[str, Any] = {"message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
              "logprobs": None, "finish_reason": finish_reason}
    answer = {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": snapshot,
              "choices": [{"index": i, **choice} for i in range(body.get("n") or 1)], "usage": usage,
              "service_tier": "default", "system_fingerprint": "fp_sandbox"}
    _keep(state, data, "answers", {"id": completion_id, "model": snapshot, "content": content,
                                   "finish_reason": finish_reason, "usage": usage, "fault": fault})
    return JSONResponse(answer, headers={"x-request-id": f"req_{digest[:32]}", "openai-processing-ms": "1"})


def _model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODELS[model_id][3], "owned_by": "system"}


@router.get("/v1/models")
def list_models(request: Request) -> dict[str, Any]:
    _authenticate(request)
    return {"object": "list", "data": [_model_object(m) for m in MODELS]}


@router.get("/v1/models/{model}")
def get_model(model: str, request: Request) -> dict[str, Any]:
    _authenticate(request)
    if model not in MODELS:
        raise api_error(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
    return _model_object(model)


@router.post("/_sandbox/faults", status_code=201)
async def add_fault(request: Request) -> dict[str, Any]:
    state, data = _state(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    kind = body.get("kind") if isinstance(body, dict) else None
    count = body.get("count", 1) if isinstance(body, dict) else None
    if kind not in FAULT_KINDS or isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
        raise api_error(400, f"expected {{\"kind\": {' | '.join(map(json.dumps, FAULT_KINDS))}, \"count\": 1..10000}}",
                        param="kind" if kind not in FAULT_KINDS else "count")
    with state.lock:
        data.setdefault("faults", []).append({"kind": kind, "count": count})
        return {"pending": list(data["faults"])}


@router.delete("/_sandbox/faults")
def clear_faults(request: Request) -> dict[str, Any]:
    state, data = _state(request)
    with state.lock:
        data["faults"] = []
    return {"pending": []}


@router.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown_url(rest: str, request: Request) -> None:
    raise api_error(404, f"Invalid URL ({request.method} /v1/{rest})")


# --- seed and credentials ------------------------------------------------------------------------

def seed(data: dict[str, Any], credentials: Credentials) -> None:
    data.update({"requests": [], "answers": [], "faults": []})


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random API key; the connection is an ``openai`` connection (host = API base URL ending in /v1,
    password = API key), as the OpenAI provider's ``OpenAIHook`` reads it."""
    key = f"sk-sandbox-{secrets.token_urlsafe(32)}"
    credentials.extra.setdefault("openai_api_keys", []).append(key)
    return {"officeflow_openai": {
        "conn_type": "openai", "host": f"{base_url}/openai/v1", "password": key,
        "description": "OpenAI (sandbox): host = API base URL ending in /v1, password = API key"}}


service = Service("openai", router, render_error, seed)
