"""Helpers of the webhook-endpoints API tests (tests/integration/plugins/): create an endpoint, sign a
delivery for each adapter (Standard Webhooks, BambooHR, Workday), change settings race-free, read the audit log."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from plugins.officeflow_gateway.adapters import bamboohr, generic

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from include.officeflow.store import AuditLog

API = "/api/v1/webhook-endpoints"
DAG = "employee_onboarding"
WORKDAY_USER = "ISU_OfficeFlow"
BAMBOOHR_SECRET = "bamboohr-private-key-supplied-0123456789"
GENERIC_MAPPING = {"employee_id": "data.id", "first_name": "data.first_name",
                   "last_name": "data.last_name", "email": "data.email"}


def create_endpoint(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Create an endpoint (generic onto employee_onboarding unless overridden); return the 201 body."""
    body: dict[str, Any] = {"name": "HR feed", "adapter": "generic", "target_dag_id": DAG}
    if fields.get("adapter", "generic") == "generic":
        body["mapping"] = GENERIC_MAPPING
    if fields.get("adapter") == "workday":
        body["verification"] = {"username": WORKDAY_USER}
    body.update(fields)
    response = client.post(API, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def delivery_url(endpoint: dict[str, Any]) -> str:
    assert endpoint["delivery_path"] == f"/officeflow/webhooks/{endpoint['id']}"
    return endpoint["delivery_path"].removeprefix("/officeflow")


def _settle(name: str) -> None:
    """Wait until the cached settings show the environment's current value of OFFICEFLOW_<name>.

    Clearing the cache once is not enough: the dispatcher thread calls ``get_settings()`` all the time,
    and a load it started before the environment changed can land in the cache after the clear.
    """
    from include.officeflow.settings import get_settings, load_settings

    field = name.removeprefix("OFFICEFLOW_").lower()
    wanted = getattr(load_settings(), field)
    deadline = time.monotonic() + 5
    while True:
        get_settings.cache_clear()
        if getattr(get_settings(), field) == wanted:
            return
        assert time.monotonic() < deadline, f"settings never showed {name}={wanted!r}"
        time.sleep(0.01)


class Env:
    """OFFICEFLOW_* overrides for one test (on ``settings_env``), set and undone race-free."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.names: list[str] = []

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
        self.names.append(name)
        _settle(name)

    def restore(self) -> None:
        """Undo the overrides and make sure no later test sees them cached (e.g. MAX_ATTEMPTS=1)."""
        self.monkeypatch.undo()
        for name in self.names:
            _settle(name)


def new_id() -> str:
    return str(uuid.uuid4().int % 10**9)


def generic_body(employee_id: str | None = None, *, email: str | None = "ada@example.com",
                 event_type: str = "employee.created", **data: Any) -> bytes:
    employee_id = employee_id or new_id()
    payload = {"id": employee_id, "first_name": "Ada", "last_name": "Lovelace", **data}
    if email is not None:
        payload["email"] = email
    return json.dumps({"type": event_type, "data": payload}).encode()


def generic_headers(secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None,
                    **extra: str) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", generic.ID_HEADER: msg_id, generic.TIMESTAMP_HEADER: str(stamp),
            generic.SIGNATURE_HEADER: generic.sign(secret, msg_id, stamp, body), **extra}


def bamboohr_headers(secret: str, body: bytes, *, timestamp: int | None = None, **extra: str) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json", bamboohr.TIMESTAMP_HEADER: stamp,
            bamboohr.SIGNATURE_HEADER: bamboohr.sign(body, stamp, secret), **extra}


def workday_headers(password: str, *, username: str = WORKDAY_USER, **extra: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Content-Type": "application/json", "Authorization": f"Basic {token}", **extra}


def audit_rows(resource_id: str | None = None) -> list[AuditLog]:
    from sqlalchemy import select

    from include.officeflow.store import AuditLog, session_scope

    with session_scope() as session:
        query = select(AuditLog).order_by(AuditLog.id)
        if resource_id is not None:
            query = query.where(AuditLog.resource_id == resource_id)
        return list(session.scalars(query))
