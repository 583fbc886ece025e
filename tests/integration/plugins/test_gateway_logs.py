"""The gateway's log lines (OFFICEFLOW_LOG_FORMAT=json), its X-Correlation-ID, and no secret in any line.

Real requests through the gateway app on the real store; every line the process wrote to stdout and stderr
is captured and parsed (JSON lines) or grepped (everything)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from include.officeflow.structured_logs import FIELDS, GATEWAY_LOGGERS, reset_gateway_logging
from tests.harness.gateway import URL, gateway_client, hire_body, signed, wait_status
from tests.harness.gateway_checks import assert_error, dag_runs
from tests.harness.ports import free_port

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


class Logs:
    """What the process wrote since the fixture started: ``lines()`` parsed, ``text()`` raw."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.out = ""
        self.err = ""

    def _read(self) -> None:
        captured = self.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err

    def text(self) -> str:
        self._read()
        return self.out + self.err

    def lines(self) -> list[dict[str, Any]]:
        self._read()
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def with_id(self, cid: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["correlationId"] == cid]


@pytest.fixture
def logs(airflow_db, clean_store, settings_env, capsys) -> Iterator[Logs]:
    settings_env.setenv("OFFICEFLOW_LOG_FORMAT", "json")
    settings_env.setenv("OFFICEFLOW_SERVICE_NAME", "officeflow-it")
    reset_gateway_logging()
    levels = {name: logging.getLogger(name).level for name in GATEWAY_LOGGERS}
    for name in GATEWAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield Logs(capsys)
    reset_gateway_logging()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def client(logs):
    with gateway_client() as test_client:
        yield test_client


def new_employee() -> str:
    return str(uuid.uuid4().int % 10**9)


def test_a_webhook_writes_json_lines_with_every_field_and_its_correlation_id(client, logs):
    body = hire_body(new_employee(), "grace@example.com")
    response = client.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "hire-4711.a:b_c"}))
    assert response.status_code == 202, response.text
    assert response.headers["X-Correlation-ID"] == response.json()["correlationId"] == "hire-4711.a:b_c"

    lines = logs.lines()
    assert lines and all(list(line)[:len(FIELDS)] == list(FIELDS) for line in lines), lines
    assert all(line["service"] == "officeflow-it" and line["environment"] == "test" and line["version"]
               for line in lines)
    mine = logs.with_id("hire-4711.a:b_c")
    [accepted] = [line for line in mine if line.get("event") == "webhook.accepted"]
    assert accepted["organizationId"] == "default" and accepted["workflowId"] == "employee_onboarding"
    assert accepted["level"] == "info" and accepted["statuses"] == ["pending"]
    [request] = [line for line in mine if line["logger"].endswith("request_context")]
    assert (request["method"], request["route"], request["status"]) == ("POST", "/webhooks/{endpoint_id}", 202)
    assert request["durationMs"] >= 0 and request["message"].startswith("POST /webhooks/{endpoint_id} -> 202 ")
    assert request is accepted  # one line per delivery: the request's, with the delivery's outcome

    # The run the dispatcher starts carries the id in its conf (its tasks log it: log_context.py).
    event = wait_status(response.json()["event_id"], "triggered")
    [(_, _, conf, _)] = dag_runs(event.dag_run_id)
    assert conf["correlation_id"] == "hire-4711.a:b_c"


def test_every_answer_echoes_the_correlation_id(client, logs, auth_headers):
    body = hire_body(new_employee())
    answers = {
        "accepted": client.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "cid-accepted"})),
        "bad signature": client.post(URL, content=body, headers=signed(body, key="wrong-key-0123456789abcdef",
                                                                        **{"X-Correlation-ID": "cid-denied"})),
        "unknown endpoint": client.post("/webhooks/nope", content=body, headers={"X-Correlation-ID": "cid-404"}),
        "no token": client.get("/api/v1/webhook-endpoints", headers={"X-Correlation-ID": "cid-401"}),
        "api": client.get("/api/v1/webhook-endpoints",
                          headers={**auth_headers("admin"), "X-Correlation-ID": "cid-api"}),
        "health": client.get("/health/live", headers={"X-Correlation-ID": "cid-health"}),
    }
    for what, response in answers.items():
        cid = response.request.headers["X-Correlation-ID"]
        assert response.headers["X-Correlation-ID"] == cid, what
    assert_error(answers["bad signature"], 401, "invalid_signature")
    assert_error(answers["unknown endpoint"], 404, "not_found")
    assert answers["no token"].status_code == 401 and answers["api"].status_code == 200
    for cid, status in (("cid-denied", 401), ("cid-404", 404), ("cid-401", 401), ("cid-api", 200)):
        [request] = [line for line in logs.with_id(cid) if line["logger"].endswith("request_context")]
        assert request["status"] == status and request["level"] == "info", request
    [health] = [line for line in logs.with_id("cid-health") if line["logger"].endswith("request_context")]
    assert health["level"] == "debug" and health["route"] == "/health/live"
    [denied] = [line for line in logs.with_id("cid-denied") if line.get("event") == "webhook.denied"]
    assert denied["organizationId"] == "default"


@pytest.mark.parametrize("supplied", ["has spaces in it", "x" * 65, "<script>alert(1)</script>", "-dash-first"])
def test_an_invalid_correlation_id_is_replaced_and_never_logged(client, logs, supplied):
    response = client.post("/webhooks/nope", content=b"{}", headers={"X-Correlation-ID": supplied})
    cid = response.headers["X-Correlation-ID"]
    assert UUID.fullmatch(cid) and assert_error(response, 404, "not_found")["correlationId"] == cid
    assert logs.with_id(cid) and supplied not in logs.text()


def test_requests_without_a_correlation_id_get_distinct_ones(client, logs):
    ids = {client.get("/health/live").headers["X-Correlation-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(UUID.fullmatch(cid) for cid in ids)
    assert {line["correlationId"] for line in logs.lines() if line["route"] == "/health/live"} == ids


def test_no_secret_reaches_any_log_line(client, logs, auth_headers, settings_env):
    token = auth_headers("admin")["Authorization"].removeprefix("Bearer ")
    secrets = {
        "token": token,
        "bogus_token": "bogus-bearer-token-0815",
        "query_key": "query-api-key-0815",
        "payload_password": "payload-password-0815",
        "payload_whsec": "whsec_payloadSecret0815",
        "payload_api_key": "payload-api-key-0815",
        "signature": "",  # the valid HMAC of the signed delivery, filled below
        "db_password": "db-password-0815",
    }
    payload = json.loads(hire_body(new_employee()))
    payload.update({"password": secrets["payload_password"], "webhook": secrets["payload_whsec"],
                    "api_key": secrets["payload_api_key"]})
    body = json.dumps(payload).encode()
    headers = signed(body, **{"X-Correlation-ID": "cid-secret"})
    secrets["signature"] = next(v for k, v in headers.items() if "signature" in k.lower())

    responses = [
        # signed: stored and accepted, secrets in the payload
        client.post(URL, content=body, headers=headers),
        # unsigned, with a bearer token and a key in the URL: refused
        client.post(f"{URL}?api_key={secrets['query_key']}", content=body, headers={
            **signed(body, key="wrong-key-0123456789abcdef"), "Authorization": f"Bearer {secrets['bogus_token']}"}),
        client.get(f"/api/v1/webhook-endpoints?api_key={secrets['query_key']}",
                   headers={"Authorization": f"Bearer {secrets['bogus_token']}"}),
        client.get("/api/v1/webhook-endpoints", headers={"Authorization": f"Bearer {token}"}),
    ]
    assert [r.status_code for r in responses] == [202, 401, 403, 200], [r.text for r in responses]
    # An error with a password in it: the store unreachable through a URL carrying one.
    settings_env.setenv("OFFICEFLOW_DB_URL", f"postgresql+psycopg2://officeflow:{secrets['db_password']}"
                                             f"@127.0.0.1:{free_port()}/officeflow")
    down = client.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "cid-down"}))
    assert_error(down, 503, "store_unavailable")

    text = logs.text()
    lines = logs.lines()
    assert [line for line in logs.with_id("cid-down") if line["level"] == "error"], "the store error was logged"
    assert {line["status"] for line in lines if line["logger"].endswith("request_context")} >= {202, 401, 403, 200, 503}
    leaked = {name: value for name, value in secrets.items() if value and value in text}
    assert not leaked, f"secrets in the logs: {sorted(leaked)}"
