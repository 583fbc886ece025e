"""The OpenAI emulation (sandbox/openai/) over real HTTP, through the real ``openai`` client (and the OpenAI
provider's hook): text and structured answers, usage, errors, retries, the answer faults and the request log.

Everything talks to the sandbox process (``sandbox`` fixture) with the connection it provisioned
(``officeflow_openai``): ``OpenAI(base_url=<host>, api_key=<password>)``, nothing patched.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field, ValidationError

MODEL = "gpt-4o-mini"


class Equipment(BaseModel):
    name: str
    category: Literal["laptop", "monitor", "phone", "headset"]
    quantity: int = Field(ge=1, le=3)
    note: str | None


class Manager(BaseModel):
    email: str
    team: str | None


class EquipmentPlan(BaseModel):
    """Nested $defs (Equipment, Manager), Optional fields, an enum list, bounds: what .parse() makes strict."""

    items: list[Equipment] = Field(min_length=1, max_length=4)
    manager: Manager | None
    priority: Literal["low", "normal", "high"]
    reasons: list[Literal["remote", "travel", "design"]]
    summary: str


HIRE = {"name": "Ada Lovelace", "role": "Designer", "start": "2025-03-03",
        "equipment": [{"name": "MacBook Pro 14", "quantity": 1}, {"name": "Dell U2723", "quantity": 2,
                                                                  "note": "27 inch"}],
        "email": "grace@officeflow.test"}
MESSAGES: list[Any] = [
    {"role": "system", "content": "You plan equipment for new hires. Answer with the plan."},
    {"role": "user", "content": "A new hire works remote and travels often, HIGH priority; a laptop and a monitor. "
                                f"The hire:\n{json.dumps(HIRE)}"},
]


@pytest.fixture
def conn(sandbox) -> dict[str, Any]:
    return sandbox.connections["officeflow_openai"]  # type: ignore[no-any-return]


@pytest.fixture
def client(conn) -> OpenAI:
    with OpenAI(base_url=conn["host"], api_key=conn["password"], max_retries=2, timeout=20) as c:
        yield c


def chat_requests(sandbox) -> list[Any]:
    return sandbox.state("openai")["requests"]  # type: ignore[no-any-return]


def tokens(text: str) -> int:
    return -(-len(text) // 4)  # chars / 4, rounded up


# --- answers ------------------------------------------------------------------------------------

def test_text_answer_mentions_the_values_of_the_embedded_object(client, sandbox) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, seed=7)
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.model == "gpt-4o-mini-2024-07-18"  # the snapshot the alias stands for, as OpenAI answers
    [choice] = answer.choices
    assert choice.finish_reason == "stop" and choice.index == 0
    assert choice.message.role == "assistant" and choice.message.refusal is None
    content = choice.message.content
    assert content is not None
    for value in ("Ada Lovelace", "Designer", "2025-03-03", "MacBook Pro 14", "27 inch", "grace@officeflow.test"):
        assert value in content
    assert "equipment[1].quantity: 2" in content
    # usage: about 4 characters a token, of every message in and of the answer out
    prompt = sum(len(m["content"]) for m in MESSAGES)
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == tokens("x" * prompt)
    assert answer.usage.completion_tokens == tokens(content)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer._request_id and answer._request_id.startswith("req_")


def test_same_request_same_answer(client) -> None:
    first = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    second = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id
    other = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Just say hello."}])
    assert other.choices[0].message.content != first.choices[0].message.content
    assert '"Just say hello."' in (other.choices[0].message.content or "")


def test_structured_answer_is_valid_for_a_pydantic_model_and_filled_from_the_request(client, sandbox) -> None:
    answer = client.chat.completions.parse(model="gpt-4.1-mini", messages=MESSAGES, response_format=EquipmentPlan)
    assert answer.model == "gpt-4.1-mini-2025-04-14"
    [choice] = answer.choices
    assert choice.finish_reason == "stop"
    plan = choice.message.parsed
    assert isinstance(plan, EquipmentPlan)
    # one item per occurrence of "name" in the embedded JSON; each property takes the i-th occurrence
    assert [item.name for item in plan.items] == ["Ada Lovelace", "MacBook Pro 14", "Dell U2723"]
    assert [item.quantity for item in plan.items] == [1, 2, 1]  # no 3rd "quantity": the smallest valid value
    assert [item.note for item in plan.items] == ["27 inch", None, None]
    assert {item.category for item in plan.items} == {"laptop"}  # mentioned before "monitor"
    assert plan.manager is not None and plan.manager.email == "grace@officeflow.test"
    assert plan.manager.team is None  # Optional with nothing to fill it
    assert plan.priority == "high"  # enum options picked from the text, case-insensitively
    assert plan.reasons == ["remote"]  # "travels" is not the word "travel"
    assert plan.summary == "Sandbox summary."
    # what left the client: openai's strict schema with $defs, anyOf-null and additionalProperties false
    [sent] = chat_requests(sandbox)
    fmt = sent["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert set(schema["$defs"]) == {"Equipment", "Manager"}
    assert schema["properties"]["manager"]["anyOf"][1] == {"type": "null"}
    jsonschema.Draft202012Validator(schema).validate(json.loads(choice.message.content or ""))


def test_json_schema_without_strict_and_json_object(client) -> None:
    schema = {"type": "object", "properties": {"role": {"type": "string"}, "days": {"type": "integer", "minimum": 1}}}
    answer = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "role_only", "schema": schema}})
    assert json.loads(answer.choices[0].message.content or "") == {"role": "Designer"}  # optional, not in the text
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": 'Reply in JSON about {"city": "Oslo"}'}],
        response_format={"type": "json_object"})
    assert "city: Oslo" in json.loads(answer.choices[0].message.content or "")["answer"]


def test_max_completion_tokens_cuts_the_answer(client) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content is not None and len(answer.choices[0].message.content) == 20
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=EquipmentPlan, max_tokens=10)


def test_models(client) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4o-mini-2024-07-18"} <= ids
    assert client.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"


def test_the_airflow_openai_hook_reaches_the_sandbox_with_the_provisioned_connection(sandbox) -> None:
    from airflow.providers.openai.hooks.openai import OpenAIHook

    hook = OpenAIHook(conn_id="officeflow_openai")  # AIRFLOW_CONN_OFFICEFLOW_OPENAI, set by the sandbox fixture
    assert hook.test_connection() == (True, "Connection established!")
    answer = hook.get_conn().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "Ada Lovelace" in (answer.choices[0].message.content or "")


# --- errors -------------------------------------------------------------------------------------

def assert_openai_error(response: httpx.Response, status: int, code: str | None, *, param: str | None = None,
                        kind: str = "invalid_request_error") -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (kind, param, code)
    assert response.headers["x-request-id"].startswith("req_")
    return error["message"]  # type: ignore[no-any-return]


def test_missing_or_wrong_key_is_401(conn, sandbox) -> None:
    url = f"{conn['host']}/chat/completions"
    body = {"model": MODEL, "messages": MESSAGES}
    message = assert_openai_error(httpx.post(url, json=body), 401, None)
    assert message.startswith("You didn't provide an API key.")
    assert_openai_error(httpx.post(url, json=body, headers={"Authorization": f"Basic {conn['password']}"}), 401, None)
    with OpenAI(base_url=conn["host"], api_key="sk-wrong-0123456789abcdef", max_retries=2) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert caught.value.code == "invalid_api_key"
        assert "sk-wrong" not in str(caught.value) and "cdef" in str(caught.value)  # the key is shown masked
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    assert [r["status"] for r in sandbox.requests("openai")] == [401, 401, 401, 401]  # a 401 is not retried
    assert len(chat_requests(sandbox)) == 3  # refused requests are recorded too


@pytest.mark.parametrize(("body", "param", "code", "words"), [
    ({"model": MODEL}, "messages", "missing_required_parameter", "Missing required parameter: 'messages'."),
    ({"model": MODEL, "messages": []}, "messages", "empty_array", "empty array"),
    ({"model": MODEL, "messages": "hello"}, "messages", "invalid_type", "expected an array of objects"),
    ({"model": MODEL, "messages": [{"role": "boss", "content": "x"}]}, "messages[0].role", "invalid_value",
     "Supported values are"),
    ({"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter",
     "'messages[0].content'"),
    ({"messages": MESSAGES}, None, None, "you must provide a model parameter"),
    ({"model": MODEL, "messages": MESSAGES, "temprature": 0}, None, None,
     "Unrecognized request argument supplied: temprature"),
    ({"model": MODEL, "messages": MESSAGES, "temperature": 3}, "temperature", "decimal_above_max_value", "<= 2"),
    ({"model": MODEL, "messages": MESSAGES, "n": 0}, "n", "integer_below_min_value", ">= 1"),
    ({"model": MODEL, "messages": MESSAGES, "max_completion_tokens": 20_000}, "max_completion_tokens",
     "integer_above_max_value", "<= 16384"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "xml"}}, "response_format.type",
     "invalid_value", "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'."),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_object"}}, "messages", None,
     "must contain the word 'json'"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {
        "schema": {"type": "object"}}}}, "response_format.json_schema.name", "missing_required_parameter", "name"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {
        "name": "plan", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
     "response_format", None,
     "Invalid schema for response_format 'plan': In context=(), 'additionalProperties' is required to be supplied "
     "and to be false."),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {
        "name": "plan", "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}},
                                   "required": ["a"]}}}},
     "response_format", None, "In context=('properties', 'a'), reference '#/$defs/A' can't be resolved."),
    ({"model": MODEL, "messages": MESSAGES, "stream": True}, "stream", "unsupported_parameter", "not emulated"),
])
def test_malformed_requests_are_400(conn, body, param, code, words) -> None:
    response = httpx.post(f"{conn['host']}/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {conn['password']}"})
    assert words in assert_openai_error(response, 400, code, param=param)


def test_client_side_errors_through_the_client(client, sandbox) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[])
    assert caught.value.code == "empty_array" and caught.value.param == "messages"
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert not_found.value.code == "model_not_found"
    assert "`gpt-9` does not exist" in not_found.value.message
    response = httpx.post(f"{client.base_url}chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"})
    assert "could not parse the JSON body" in assert_openai_error(response, 400, None)
    unknown = httpx.post(f"{client.base_url}responses", json={}, headers={"Authorization": f"Bearer {client.api_key}"})
    assert assert_openai_error(unknown, 404, None) == "Invalid URL (POST /v1/responses)"
    assert [r["status"] for r in sandbox.requests("openai")] == [400, 404, 400, 404]  # 4xx are not retried


# --- rate limits and server errors --------------------------------------------------------------

def test_429_with_retry_after_then_success_through_the_clients_retries(client, sandbox) -> None:
    sandbox.fault("openai", method="POST", path="/v1/chat/completions", status=429, retry_after=1, count=2)
    started = time.monotonic()
    answer = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=EquipmentPlan)
    assert time.monotonic() - started >= 2  # Retry-After honoured twice
    assert answer.choices[0].message.parsed is not None
    assert [r["status"] for r in sandbox.requests("openai")] == [429, 429, 200]
    assert len(chat_requests(sandbox)) == 1  # the throttled attempts never reached the model


def test_429_answer_shape_and_retries_running_out(conn, sandbox) -> None:
    sandbox.fault("openai", path="/v1/chat/completions", status=429, count=1)
    response = httpx.post(f"{conn['host']}/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                          headers={"Authorization": f"Bearer {conn['password']}"})
    assert_openai_error(response, 429, "rate_limit_exceeded", kind="requests")
    assert response.headers["Retry-After"] == "1"  # also when the fault sets none
    sandbox.fault("openai", path="/v1/chat/completions", status=503, retry_after=0.1, count=2)
    with OpenAI(base_url=conn["host"], api_key=conn["password"], max_retries=1) as impatient, \
            pytest.raises(openai.InternalServerError) as caught:
        impatient.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 503 and caught.value.body["type"] == "server_error"  # type: ignore[index]
    assert [r["status"] for r in sandbox.requests("openai")] == [429, 503, 503]


# --- answer faults ------------------------------------------------------------------------------

def test_invalid_json_fault(client, sandbox) -> None:
    response = sandbox.client.post("/openai/_sandbox/faults", json={"kind": "invalid_json", "count": 2})
    assert response.status_code == 201 and response.json()["pending"] == [{"kind": "invalid_json", "count": 2}]
    with pytest.raises(ValidationError):  # .parse() cannot read the content
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=EquipmentPlan)
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    content = answer.choices[0].message.content or ""
    assert answer.choices[0].finish_reason == "stop"
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    healthy = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=EquipmentPlan)
    assert healthy.choices[0].message.parsed is not None  # two answers spoilt, then healthy again
    assert [a["fault"] for a in sandbox.state("openai")["answers"]] == ["invalid_json", "invalid_json", None]


def test_schema_violation_fault(client, sandbox) -> None:
    sandbox.client.post("/openai/_sandbox/faults", json={"kind": "schema_violation"}).raise_for_status()
    with pytest.raises(ValidationError) as caught:
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=EquipmentPlan)
    assert caught.value.errors()[0]["type"] == "missing" and caught.value.errors()[0]["loc"] == ("items",)
    [answer] = sandbox.state("openai")["answers"]
    content = json.loads(answer["content"])  # valid JSON ...
    schema = chat_requests(sandbox)[0]["response_format"]["json_schema"]["schema"]
    assert not jsonschema.Draft202012Validator(schema).is_valid(content)  # ... that the schema refuses
    assert set(content) == {"manager", "priority", "reasons", "summary"}


def test_fault_requests_are_checked_and_reset_clears_them(sandbox) -> None:
    for body in ({"kind": "garbage"}, {"kind": "invalid_json", "count": 0}, {"count": 1}):
        response = sandbox.client.post("/openai/_sandbox/faults", json=body)
        assert_openai_error(response, 400, None, param="count" if body.get("kind") == "invalid_json" else "kind")
    sandbox.client.post("/openai/_sandbox/faults", json={"kind": "invalid_json", "count": 3}).raise_for_status()
    assert sandbox.state("openai")["faults"] == [{"kind": "invalid_json", "count": 3}]
    assert sandbox.client.delete("/openai/_sandbox/faults").json() == {"pending": []}
    sandbox.client.post("/openai/_sandbox/faults", json={"kind": "schema_violation"}).raise_for_status()
    sandbox.reset("openai")
    assert sandbox.state("openai") == {"requests": [], "answers": [], "faults": []}


# --- the request log ----------------------------------------------------------------------------

def test_request_log_holds_every_body_as_sent(client, conn, sandbox) -> None:
    client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_completion_tokens=300,
                                   user="officeflow-org-1", metadata={"prompt": "equipment_plan@1"})
    [sent] = chat_requests(sandbox)
    assert sent == {"model": MODEL, "messages": MESSAGES, "temperature": 0, "max_completion_tokens": 300,
                    "user": "officeflow-org-1", "metadata": {"prompt": "equipment_plan@1"}}
    headers = {"Authorization": f"Bearer {conn['password']}"}
    with httpx.Client(base_url=conn["host"], headers=headers) as raw:
        for i in range(205):
            raw.post("/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": str(i)}]})
        raw.post("/chat/completions", content=b"not json at all", headers={"Content-Type": "application/json"})
    log = chat_requests(sandbox)
    assert len(log) == 200  # the last 200
    assert log[0]["messages"][0]["content"] == "6" and log[-2]["messages"][0]["content"] == "204"
    assert log[-1] == "not json at all"  # a body that is not JSON is kept as text
