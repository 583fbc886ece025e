"""/api/v1/dashboard and the /admin/dashboard page in-process, on real PostgreSQL: runs, HITL approvals in
Airflow's metadata DB and inbox events, email deliveries in the store, written at chosen days in the past.

Each test works in an organization of its own, read by users limited to it: what other tests leave in the
shared metadata DB (runs of today) stays out of the figures, and the scoping is what is under test too."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from include.officeflow.auth import organizations
from tests.harness.airflow_tools import api_token
from tests.harness.dashboard_data import add_approval, add_emails, add_event, add_run, day_at, today_minus
from tests.harness.endpoints import create_endpoint
from tests.harness.gateway_checks import assert_error
from tests.integration.plugins import extra_users

URL = "/api/v1/dashboard"
PAGE = "/admin/dashboard"
ONBOARDING = "employee_onboarding"  # an HR workflow (tag people/onboarding)
IDENTITY = "identity_provisioning"  # an IT workflow
extra_users.needs({"users": {"dash-auditor": "Auditor", "dash-it": "IT Operator"}})


@pytest.fixture
def org(client, extra_users) -> Any:
    """An organization of its own; dash-auditor and dash-it are its only members."""
    name = f"dash-{uuid.uuid4().hex[:8]}"
    for user in ("dash-auditor", "dash-it"):
        organizations.set_user(user, [name], by="test")
    yield name
    for user in ("dash-auditor", "dash-it"):
        organizations.set_user(user, [], by="test")


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(username)}"}


def dashboard(client, username: str, days: int = 7) -> dict[str, Any]:
    response = client.get(URL, params={"days": days}, headers=bearer(username))
    assert response.status_code == 200, response.text
    return response.json()


def at(data: dict[str, Any], days_ago: int) -> int:
    """The index of the day ``days_ago`` in the period's series."""
    return data["day_labels"].index(today_minus(days_ago).isoformat())


@pytest.fixture
def history(client, admin, airflow_db, store_url, org) -> dict[str, Any]:
    """A week of ``org``: onboarding runs started by webhook events, approvals, emails; and another organization's."""
    endpoint = create_endpoint(client, admin, organization_id=org)
    other = f"other-{uuid.uuid4().hex[:8]}"
    received = day_at(3, 9)
    runs = {}
    for name, state, minutes in (("fast", "success", 10), ("slow", "success", 30), ("broken", "failed", 5)):
        runs[name] = add_run(airflow_db, ONBOARDING, state, received + timedelta(seconds=5),
                             end=received + timedelta(minutes=minutes), organization=org)
        add_event(store_url, endpoint["id"], "triggered", received, dag_id=ONBOARDING, run_id=runs[name])
    runs["going"] = add_run(airflow_db, ONBOARDING, "running", day_at(1, 10), organization=org)
    add_event(store_url, endpoint["id"], "triggered", day_at(1, 10), dag_id=ONBOARDING, run_id=runs["going"])
    add_event(store_url, endpoint["id"], "rejected", day_at(2, 8))
    add_event(store_url, endpoint["id"], "dead", day_at(2, 9))
    add_event(store_url, endpoint["id"], "ignored", day_at(0, 0, 1))
    add_run(airflow_db, ONBOARDING, "success", day_at(40), end=day_at(40, 10), organization=org)  # 90 days only
    add_run(airflow_db, IDENTITY, "success", day_at(2), end=day_at(2, 10), organization=org)
    add_run(airflow_db, ONBOARDING, "success", day_at(2), end=day_at(2, 10), organization=other)
    add_run(airflow_db, ONBOARDING, "failed", day_at(2), end=day_at(2, 10))  # no organization: admins only

    # Approvals: one answered after 2 h, one waiting for 30 h, one that timed out unanswered (not counted).
    add_approval(airflow_db, ONBOARDING, runs["fast"], received, received + timedelta(hours=2))
    waiting_since = day_at(0, 0) - timedelta(hours=30)
    add_approval(airflow_db, ONBOARDING, runs["going"], waiting_since, None, task_state="deferred")
    add_approval(airflow_db, ONBOARDING, runs["broken"], received, None, task_state="failed")

    add_emails(store_url, org, "delivered", day_at(3), count=3)
    add_emails(store_url, org, "bounced", day_at(3))
    add_emails(store_url, org, "sent", day_at(2))
    add_emails(store_url, org, "suppressed", day_at(2))
    add_emails(store_url, other, "bounced", day_at(2), count=5)
    return {"endpoint": endpoint, "runs": runs, "other": other, "waiting_since": waiting_since}


# --- who may read it -----------------------------------------------------------------------------------------


def test_the_dashboard_needs_a_token(client):
    assert_error(client.get(URL), 401, "unauthorized")


@pytest.mark.parametrize("username", ["viewer", "op"])  # no OfficeFlow permission
def test_without_the_permission_it_is_forbidden(client, username):
    error = assert_error(client.get(URL, headers=bearer(username)), 403, "forbidden")
    assert "OfficeFlow Dashboard" in error["message"]


def test_only_the_offered_periods(client, admin):
    for days in (0, 14, 365):
        assert_error(client.get(URL, params={"days": days}, headers=admin), 422, "invalid_period")
    assert client.get(URL, params={"days": "week"}, headers=admin).status_code == 422


# --- the figures ---------------------------------------------------------------------------------------------


def test_runs_per_workflow_and_day_by_state(client, history, org):
    data = dashboard(client, "dash-auditor")
    assert data["days"] == 7 and len(data["day_labels"]) == 7 and data["day_labels"][-1] == today_minus(0).isoformat()
    assert data["organizations"] == [org]
    runs = data["runs"]
    by_workflow = {w["dag_id"]: w for w in runs["workflows"]}
    assert set(by_workflow) == {ONBOARDING, IDENTITY}  # not the other organization's, not the one without
    onboarding = by_workflow[ONBOARDING]
    assert onboarding["totals"] == {"success": 2, "failed": 1, "running": 1, "queued": 0}
    assert onboarding["series"]["success"][at(data, 3)] == 2 and onboarding["series"]["failed"][at(data, 3)] == 1
    assert onboarding["series"]["running"][at(data, 1)] == 1
    assert by_workflow[IDENTITY]["series"]["success"][at(data, 2)] == 1
    assert runs["totals"] == {"success": 3, "failed": 1, "running": 1, "queued": 0}
    assert runs["success_rate"] == 75.0

    # The 40-day-old run is in the 90-day period only.
    assert dashboard(client, "dash-auditor", 30)["runs"]["totals"]["success"] == 3
    ninety = dashboard(client, "dash-auditor", 90)
    assert len(ninety["day_labels"]) == 90 and ninety["runs"]["totals"]["success"] == 4


def test_lead_time_from_the_event_to_its_finished_run(client, history):
    lead = dashboard(client, "dash-auditor")["lead_time"]
    [onboarding] = lead["workflows"]
    # 10 and 30 minutes from the event's arrival to the run's end; the failed and the running run apart.
    assert onboarding == {"dag_id": ONBOARDING, "count": 2, "p50": 1200.0, "p95": 1740.0, "max": 1800.0,
                          "failed": 1, "unfinished": 1}
    assert lead["overall"]["count"] == 2 and lead["overall"]["p50"] == 1200.0


def test_webhook_events_by_outcome_per_day(client, history):
    data = dashboard(client, "dash-auditor")
    hooks = data["webhooks"]
    assert hooks["totals"] == {"triggered": 4, "ignored": 1, "rejected": 1, "dead": 1, "pending": 0}
    assert hooks["series"]["triggered"][at(data, 3)] == 3 and hooks["series"]["triggered"][at(data, 1)] == 1
    assert hooks["series"]["dead"][at(data, 2)] == 1 and hooks["series"]["ignored"][at(data, 0)] == 1


def test_approval_waits_answered_and_still_waiting(client, history):
    approvals = dashboard(client, "dash-auditor")["approvals"]
    assert approvals["answered"] == {"count": 1, "p50": 7200.0, "p95": 7200.0, "max": 7200.0}
    assert approvals["waiting"] == 1
    assert 30 * 3600 <= approvals["oldest_waiting_seconds"] < 31 * 3600 + 86400
    assert {b["label"]: (b["answered"], b["waiting"]) for b in approvals["buckets"]} == {
        "< 1 h": (0, 0), "1-4 h": (1, 0), "4-24 h": (0, 0), "1-3 days": (0, 1), "> 3 days": (0, 0)}
    assert approvals["workflows"] == [{"dag_id": ONBOARDING, "count": 1, "p50": 7200.0, "p95": 7200.0,
                                       "max": 7200.0, "waiting": 1}]


def test_email_delivery_and_bounce_rates(client, history):
    data = dashboard(client, "dash-auditor")
    email = data["email"]
    assert email["totals"] == {"delivered": 3, "bounced": 1, "complained": 0, "failed": 0, "suppressed": 1,
                               "sent": 1, "sending": 0}
    assert email["series"]["delivered"][at(data, 3)] == 3
    assert email["accepted"] == 5 and email["delivery_rate"] == 60.0 and email["bounce_rate"] == 20.0


def test_admins_see_every_organization(client, admin, history, org):
    data = client.get(URL, params={"days": 7}, headers=admin).json()
    assert data["organizations"] is None
    onboarding = next(w for w in data["runs"]["workflows"] if w["dag_id"] == ONBOARDING)
    # This test's runs, the other organization's and the one without an organization (other tests add theirs).
    assert onboarding["series"]["success"][at(data, 2)] >= 1 and onboarding["series"]["failed"][at(data, 2)] >= 1
    assert data["email"]["totals"]["bounced"] >= 6


def test_a_workflow_the_user_may_not_read_stays_out(client, history):
    """IT operators read the IT workflows only (per-DAG permissions): no onboarding runs, lead times or approvals."""
    data = dashboard(client, "dash-it")
    assert [w["dag_id"] for w in data["runs"]["workflows"]] == [IDENTITY]
    assert data["lead_time"]["workflows"] == [] and data["approvals"]["waiting"] == 0
    assert data["webhooks"]["totals"]["triggered"] == 4  # the inbox is the organization's, whatever the workflow


def test_an_empty_organization_has_empty_figures(client, org):
    data = dashboard(client, "dash-auditor", 30)
    assert data["runs"]["workflows"] == [] and data["runs"]["success_rate"] is None
    assert all(n == 0 for n in data["webhooks"]["totals"].values())
    assert data["lead_time"] == {"overall": {"count": 0, "p50": 0.0, "p95": 0.0, "max": 0.0}, "workflows": []}
    assert data["approvals"]["waiting"] == 0 and data["approvals"]["oldest_waiting_seconds"] is None
    assert data["email"]["delivery_rate"] is None and data["email"]["bounce_rate"] is None


# --- the page ------------------------------------------------------------------------------------------------


def test_the_page_sends_signed_out_visitors_to_the_login_form(client):
    response = client.get(PAGE, params={"days": 90}, follow_redirects=False)
    assert response.status_code == 303
    assert "/auth/login/" in response.headers["location"] and "dashboard" in response.headers["location"]


def test_the_page_without_the_permission_names_it(client):
    client.cookies.set("_token", api_token("viewer"))
    response = client.get(PAGE)
    assert response.status_code == 403
    assert "can_read" in response.text and "OfficeFlow Dashboard" in response.text
    assert "dashboard.js" not in response.text


def test_the_page_loads_its_script_under_a_strict_policy(client):
    client.cookies.set("_token", api_token("dash-auditor"))
    response = client.get(PAGE, params={"days": 90})
    assert response.status_code == 200, response.text
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "/admin/static/dashboard.js?v=" in response.text and 'data-period="90"' in response.text
    assert 'aria-pressed="true">90 days' in response.text
    script = client.get("/admin/static/dashboard.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text  # API text reaches the page as text only
