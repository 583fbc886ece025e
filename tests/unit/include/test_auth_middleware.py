"""The api-server's root middlewares (plugins/officeflow_auth/middleware.py) around a stand-in app, with the throttle
and the audit log replaced by recorders: what LoginGuard counts as a failed or successful login, when it answers
429 itself, and which Airflow API calls AuditTrail audits. The real thing is tests/e2e/test_auth_throttling.py and
tests/e2e/test_auth_audit.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from include.officeflow.auth.throttle import Lock
from plugins.officeflow_auth import middleware


class Recorder:
    def __init__(self) -> None:
        self.lock: Lock | None = None
        self.checked: list[tuple[str, str]] = []
        self.recorded: list[tuple[str, str, bool]] = []
        self.audited: list[dict[str, Any]] = []


@pytest.fixture
def recorder(monkeypatch, settings_env) -> Recorder:
    settings_env.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", "[]")
    rec = Recorder()

    def check(username: str, address: str) -> Lock | None:
        rec.checked.append((username, address))
        return rec.lock

    monkeypatch.setattr(middleware.throttle, "check", check)
    monkeypatch.setattr(middleware.throttle, "record", lambda u, a, ok: rec.recorded.append((u, a, ok)))
    monkeypatch.setattr(middleware, "audit", lambda action, **kw: rec.audited.append({"action": action, **kw}))
    return rec


async def token(request: Request) -> Response:
    body = await request.json()  # the guard read the body first: the app must still get it
    if body.get("password") == "right":
        return JSONResponse({"access_token": "t"}, status_code=201)
    if body.get("password") == "no-otp":
        return JSONResponse({"detail": "send the one-time code"}, status_code=400)
    return JSONResponse({"detail": "Invalid credentials"}, status_code=401)


async def form(request: Request) -> Response:
    data = await request.form()
    target = "/" if data.get("password") == "right" else "/auth/login/?next="
    return RedirectResponse(target, status_code=302)


async def ok(request: Request) -> Response:
    await request.body()
    return JSONResponse({"ok": True})


def client(guard: type) -> TestClient:
    app = Starlette(routes=[Route("/auth/token", token, methods=["POST"]),
                            Route("/auth/login/", form, methods=["GET", "POST"]),
                            Route("/officeflow/api/v1/auth/login", token, methods=["POST"]),
                            Route("/api/v2/dags/{dag_id}/dagRuns", ok, methods=["POST"]),
                            Route("/api/v2/dags/{dag_id}/clearTaskInstances", ok, methods=["POST"]),
                            Route("/elsewhere", ok, methods=["POST"])])
    return TestClient(guard(app), follow_redirects=False)


@pytest.mark.parametrize("path", ["/auth/token", "/officeflow/api/v1/auth/login"])
def test_token_logins_are_recorded_and_audited(recorder, path):
    guarded = client(middleware.LoginGuard)
    assert guarded.post(path, json={"username": " Ada ", "password": "wrong"}).status_code == 401
    assert guarded.post(path, json={"username": "ada", "password": "right"}).status_code == 201
    assert guarded.post(path, json={"username": "ada", "password": "no-otp"}).status_code == 400  # no attempt
    assert recorder.recorded == [("Ada", "testclient", False), ("ada", "testclient", True)]
    assert [(a["action"], a["outcome"], a["actor"], a["route"]) for a in recorder.audited] == [
        ("auth.login_failed", "failure", "user:Ada", path), ("auth.token_issued", "success", "user:ada", path)]


def test_form_logins_are_judged_by_where_they_redirect(recorder):
    guarded = client(middleware.LoginGuard)
    assert guarded.post("/auth/login/", data={"username": "ada", "password": "wrong"}).status_code == 302
    assert guarded.post("/auth/login/", data={"username": "ada", "password": "right"}).status_code == 302
    guarded.get("/auth/login/")  # showing the form is no attempt
    assert recorder.recorded == [("ada", "testclient", False), ("ada", "testclient", True)]
    assert [a["action"] for a in recorder.audited] == ["auth.login_failed", "auth.login"]


def test_a_locked_login_is_answered_429_without_reaching_the_app(recorder):
    recorder.lock = Lock(retry_after=17, reason="user")
    response = client(middleware.LoginGuard).post("/auth/token", json={"username": "ada", "password": "right"},
                                                  headers={"X-Correlation-ID": "abc-123"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "17" and response.headers["X-Correlation-ID"] == "abc-123"
    assert response.json()["error"] == {"message": "too many failed logins for this user; try again in 17 s",
                                        "code": "too_many_attempts", "correlationId": "abc-123"}
    assert recorder.recorded == []
    assert [(a["action"], a["outcome"], a["locked_by"]) for a in recorder.audited] == [
        ("auth.login_throttled", "denied", "user")]


def test_other_routes_and_methods_pass_untouched(recorder):
    guarded = client(middleware.LoginGuard)
    assert guarded.post("/elsewhere", json={"username": "ada"}).status_code == 200
    assert recorder.checked == [] and recorder.recorded == []


def test_an_oversized_login_body_is_refused(recorder):
    response = client(middleware.LoginGuard).post("/auth/token", content=b"x" * (middleware.MAX_LOGIN_BODY + 1))
    assert response.status_code == 413 and recorder.checked == []


@pytest.mark.parametrize(("method", "path", "action", "params"), [
    ("POST", "/api/v2/dags/d1/dagRuns", "workflow.triggered", {"dag_id": "d1"}),
    ("PATCH", "/api/v2/dags/d1/dagRuns/r1/taskInstances/approval/-1/hitlDetails", "approval.responded",
     {"dag_id": "d1", "run_id": "r1", "task_id": "approval", "map_index": "-1"}),
    ("POST", "/api/v2/dags/d1/clearTaskInstances", "task_instances.cleared", {"dag_id": "d1"}),
    ("PATCH", "/api/v2/dags/d1/dagRuns/r1", "workflow_run.updated", {"dag_id": "d1", "run_id": "r1"}),
    ("PATCH", "/api/v2/dags/d1/dagRuns/r1/taskInstances/t1", "task_instance.updated",
     {"dag_id": "d1", "run_id": "r1", "task_id": "t1"}),
    ("PATCH", "/api/v2/dags/d1/dagRuns/r1/taskInstances/t1/3", "task_instance.updated",
     {"dag_id": "d1", "run_id": "r1", "task_id": "t1", "map_index": "3"}),
    ("POST", "/api/v2/dags/d1/dagRuns/r1/clear", "workflow_run.cleared", {"dag_id": "d1", "run_id": "r1"}),
    ("DELETE", "/api/v2/dags/d1/dagRuns/r1", "workflow_run.deleted", {"dag_id": "d1", "run_id": "r1"}),
])
def test_audited_airflow_calls(method, path, action, params):
    assert middleware.AuditTrail._match({"method": method, "path": path}) == (action, params)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v2/dags/d1/dagRuns"), ("PATCH", "/api/v2/dags/d1/dagRuns/r1/taskInstances/t1/dry_run"),
    ("POST", "/api/v2/dags/d1/dagRuns/r1/taskInstances"), ("PATCH", "/api/v2/dags/d1"),
])
def test_reads_and_dry_runs_are_not_audited(method, path):
    assert middleware.AuditTrail._match({"method": method, "path": path}) is None


def test_what_the_body_adds_to_an_audit_record():
    body = json.dumps({"dag_run_id": "r1", "conf": {"organization_id": "acme", "email": "ada@example.com"},
                       "note": "n", "chosen_options": ["Approve"], "new_state": "success"}).encode()
    assert middleware._details(body) == {"dag_run_id": "r1", "organization_id": "acme", "chosen_options": ["Approve"],
                                         "new_state": "success"}
    assert middleware._details(b"not json") == {} and middleware._details(b"[1]") == {}


def test_audit_trail_records_successes_only(recorder, monkeypatch):
    async def actor(connection: Any) -> str:
        return "user:ada"

    monkeypatch.setattr(middleware.AuditTrail, "_actor", staticmethod(actor))
    audited = client(middleware.AuditTrail)
    assert audited.post("/api/v2/dags/d1/dagRuns", json={"dag_run_id": "r1"}).status_code == 200
    assert audited.post("/api/v2/dags/d1/clearTaskInstances", json={"dry_run": True}).status_code == 200
    assert [(a["action"], a["actor"], a["resource_id"], a.get("dag_run_id")) for a in recorder.audited] == [
        ("workflow.triggered", "user:ada", "d1", "r1")]  # a dry run changes nothing
