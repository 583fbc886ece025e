"""End to end: a workflow run books a meeting (a declarative workflow's ``schedule_meeting`` node, so
ScheduleMeetingOperator runs as a real task), which records it and watches the organizer's Google calendar;
the attendee declines in the sandbox; the sandbox's push reaches the real api-server's gateway; the organizer
gets a Slack DM; the management API lists the change, through docs/slack-and-calendar.md's commands."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import bash_block_with
from tests.harness.e2e_support import MANAGER, store_rows, wait_for_dag
from tests.harness.sandbox import SandboxServer
from tests.harness.sandbox_clients import google_client, google_user
from tests.harness.waiting import wait_until

# The first e2e test of a session also pays for starting the platform (minutes on a loaded machine).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]
API = "/officeflow/api/v1/workflows"
DOC = "docs/slack-and-calendar.md"


def definition(name: str, attendee: str) -> dict:
    monday = (datetime.now(UTC) + timedelta(days=14)).date()
    monday -= timedelta(days=monday.weekday())
    return {
        "name": name, "description": "e2e: book a first-day meeting", "trigger": {"type": "manual"},
        "nodes": [{"id": "first_day_meeting", "type": "schedule_meeting", "config": {
            "provider": "google", "organizer": MANAGER, "attendees": [attendee], "title": "First day: welcome",
            "window_start": monday.isoformat(), "window_end": (monday + timedelta(days=5)).isoformat(),
            "duration": 30}}],
    }


def run_state(platform: AirflowPlatform, dag_id: str, run_id: str) -> str | None:
    """The run's final state, or None while it runs (or while a loaded api-server is slow to answer)."""
    try:
        response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    except httpx.TimeoutException:
        return None
    state = response.json().get("state") if response.status_code == 200 else None
    return state if state in ("success", "failed") else None


def test_declined_first_day_meeting_reaches_the_organizer_in_slack(platform: AirflowPlatform, store: str,
                                                                   sandbox_server: SandboxServer, tmp_path: Path):
    sandbox_server.reset()
    engine = create_engine(store)  # the reset sandbox knows no channel: nothing in the store may claim one
    with engine.begin() as conn:
        conn.execute(text("UPDATE calendar_subscriptions SET status = 'stopped'"))
    engine.dispose()
    attendee = f"hire-{uuid.uuid4().hex[:6]}@officeflow.test"
    google_user(sandbox_server, attendee)
    name = f"e2e_meeting_{uuid.uuid4().hex[:8]}"
    assert platform.api("POST", API, json=definition(name, attendee)).status_code == 201
    wait_for_dag(platform, name, timeout=180)
    deadline = time.monotonic() + 60
    while (response := platform.api("POST", f"{API}/{name}/execute", json={"conf": {}})).status_code == 409:
        assert time.monotonic() < deadline, response.text
        time.sleep(2)
    assert response.status_code == 201, response.text
    run_id = response.json()["dag_run_id"]
    state = wait_until(lambda: run_state(platform, name, run_id), 300, "the booking run", interval=1,
                       detail=platform.logs_tail)
    assert state == "success", f"{platform.task_states(name, run_id)}\n{platform.logs_tail()}"

    [(event_id,)] = store_rows(store, "SELECT event_id FROM booked_meetings WHERE run_id = :run", run=run_id)
    [(channel,)] = store_rows(store, "SELECT channel_id FROM calendar_subscriptions "
                                     "WHERE calendar = :cal AND status = 'active'", cal=MANAGER)
    wait_until(lambda: [d for d in sandbox_server.state("google").get("push_deliveries", [])
                        if d["channel_id"] == channel and d["status"] == 200], 30, "the sync message", interval=1,
               detail=platform.logs_tail)

    with google_client(sandbox_server, attendee) as cal:
        cal.patch(f"/calendars/primary/events/{event_id}",
                  json={"attendees": [{"email": attendee, "responseStatus": "declined"}]}).raise_for_status()

    def notice() -> list[str]:
        messages = sandbox_server.state("slack")["messages"]
        return [m["text"] for c, ms in messages.items() if c.startswith("D") for m in ms
                if f"{attendee} declined" in m.get("text", "")]

    [notice_text] = wait_until(notice, 60, "the Slack notice", interval=1, detail=platform.logs_tail)
    assert "First day: welcome" in notice_text
    rows = store_rows(store, "SELECT c.kind, c.action FROM meeting_changes c JOIN booked_meetings m "
                             "ON m.id = c.meeting_id WHERE m.run_id = :run", run=run_id)
    assert [tuple(r) for r in rows] == [("declined", "notified")]

    block = bash_block_with(DOC, "/officeflow/api/v1/calendar/changes")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**platform.env, "OFFICEFLOW_URL": platform.base_url,
                                              "ACCESS": platform.token()})
    assert result.returncode == 0, result.stderr
    created, listed, changes = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert created["calendar"] == "people.manager@officeflow.test" and created["status"] == "active"
    assert {s["calendar"] for s in listed["subscriptions"]} >= {MANAGER, "people.manager@officeflow.test"}
    [change] = [c for c in changes["changes"] if c["run_id"] == run_id]
    assert change["kind"] == "declined" and change["attendee"] == attendee and change["title"] == "First day: welcome"
