"""Helpers to post signed BambooHR deliveries to the gateway in tests, and the gateway app in a TestClient.

What a delivery left behind is checked with tests/harness/gateway_checks.py."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sandbox.bamboohr.samples import sample_hire
from sandbox.bamboohr.sender import signed_headers
from tests.harness.environment import BAMBOOHR_TEST_KEY

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

URL = "/webhooks/bamboohr"  # the built-in endpoint (OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY)


def hire_body(employee_id: str, email: str | None = None) -> bytes:
    payload = sample_hire(employee_id=employee_id, email=email)
    payload["employees"][0]["timestamp"] = "2026-11-01T09:00:00+0000"  # stable across redeliveries
    return json.dumps(payload).encode()


def signed(body: bytes, key: str = BAMBOOHR_TEST_KEY, timestamp: int | None = None,
           **extra: str) -> dict[str, Any]:
    return {**signed_headers(body, key, int(time.time()) if timestamp is None else timestamp), **extra}


def wait_status(event_id: str, status: str, timeout: float = 20):
    """Poll the inbox until the event reaches ``status`` (the dispatcher works in the background)."""
    from include.officeflow.store import WebhookEvent, session_scope

    deadline = time.monotonic() + timeout
    event = None
    while time.monotonic() < deadline:
        with session_scope() as session:
            event = session.get(WebhookEvent, event_id)
        if event is not None and event.status == status:
            return event
        time.sleep(0.1)
    raise AssertionError(f"event {event_id} not {status} after {timeout}s: "
                         f"{event.status if event else None} {event.error if event else ''}")


def gateway_client() -> TestClient:
    """The gateway app in a TestClient that hands a 500 back as a response (to fail an assertion on
    it) instead of re-raising the server's exception into the test."""
    from fastapi.testclient import TestClient

    from plugins.officeflow_gateway.app import create_app

    return TestClient(create_app(), raise_server_exceptions=False)
