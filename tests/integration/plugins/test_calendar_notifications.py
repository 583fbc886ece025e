"""Calendar sync through the gateway, served over HTTP so the sandbox delivers to it as Google and Graph do:
ScheduleMeetingOperator books (and subscribes), the attendee declines in the sandbox, the notification
reaches ``/calendar/<provider>/notifications``, is verified and stored, and the organizer's Slack DM (in the
sandbox's Slack) says who declined. Then the failure paths: forged token / clientState, unknown channel,
replayed and stale message numbers, expired subscriptions, Graph's handshake; renewals by the maintenance
operator; the management API with its permission and tenant rules. PostgreSQL store, real clients."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from include.officeflow import calendar_sync as sync
from include.officeflow.store import session_scope
from include.officeflow.store.models import CalendarNotification, CalendarSubscription, MeetingChange
from operators.calendar import RenewCalendarSubscriptionsOperator, ScheduleMeetingOperator
from tests.harness.ports import free_port
from tests.harness.sandbox_clients import PASSWORD, google_client, google_user, request_token
from tests.harness.store import truncate
from tests.harness.waiting import wait_until

ADMIN, BOB = "admin@officeflow.test", "bob@officeflow.test"
TABLES = ("meeting_changes", "calendar_notifications", "booked_meetings", "calendar_subscriptions")


@pytest.fixture
def gateway(airflow_db, store_url, sandbox, settings_env):
    """The gateway app on a real port (uvicorn in a thread), where the sandbox's pushes arrive."""
    import uvicorn

    from plugins.officeflow_gateway.app import create_app

    truncate(store_url, *TABLES, "audit_log", cascade=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings_env.setenv("OFFICEFLOW_CALENDAR_NOTIFICATIONS_URL", url)
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    with httpx.Client(base_url=url, timeout=20) as client:
        yield client
    server.should_exit = True
    thread.join(10)


def context(run_id: str) -> Any:
    return {"ti": SimpleNamespace(dag_id="employee_onboarding", run_id=run_id, task_id="schedule_manager_1on1",
                                  map_index=-1),
            "params": {"organization_id": "default"}}


def book(provider: str, run_id: str = "manual__sync-1", on_change: str | None = None) -> dict[str, Any]:
    monday = (datetime.now(UTC) + timedelta(days=14)).date()
    monday -= timedelta(days=monday.weekday())
    operator = ScheduleMeetingOperator(task_id="schedule_manager_1on1", provider=provider, organizer=ADMIN,
                                       attendees=[BOB], title="Welcome 1:1", window_start=monday.isoformat(),
                                       window_end=(monday + timedelta(days=5)).isoformat(), duration=30,
                                       on_change=on_change)
    return operator.execute(context(run_id))  # type: ignore[no-any-return]


def subscription_of(provider: str) -> CalendarSubscription:
    with session_scope() as session:
        return session.scalars(select(CalendarSubscription).where(CalendarSubscription.provider == provider,
                                                                  CalendarSubscription.status == "active")).one()


def notifications() -> list[CalendarNotification]:
    with session_scope() as session:
        return list(session.scalars(select(CalendarNotification)))


def changes() -> list[MeetingChange]:
    with session_scope() as session:
        return list(session.scalars(select(MeetingChange)))


def slack_dms(sandbox) -> list[str]:
    state = sandbox.state("slack")
    return [m.get("text", "") for channel, messages in state["messages"].items()
            for m in messages if channel.startswith("D")]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["correlationId"]


# --- Google ---------------------------------------------------------------------------------------------

def test_google_decline_is_verified_recorded_and_told_in_slack(gateway, sandbox):
    google_user(sandbox, BOB)
    meeting = book("google")
    sub = subscription_of("google")
    assert sub.calendar == ADMIN and sub.resource_id and sub.sync_token and sub.expires_at > datetime.now(UTC)
    wait_until(lambda: [n for n in notifications() if n.state == "sync"], what="the sync message")
    assert "channel token" not in sub.secret_encrypted and len(sub.secret_encrypted) > 60  # Fernet, not plain

    with google_client(sandbox, BOB) as bob:
        bob.patch(f"/calendars/primary/events/{meeting['event_id']}",
                  json={"attendees": [{"email": BOB, "responseStatus": "declined"}]}).raise_for_status()
    [change] = wait_until(lambda: [c for c in changes() if c.action != "none" or c.error], what="the change")
    assert change.kind == "declined" and change.attendee == BOB and change.action == "notified", change.error
    dms = wait_until(lambda: [t for t in slack_dms(sandbox) if "declined" in t], what="the Slack notice")
    assert dms == [f":calendar: {BOB} declined \u201cWelcome 1:1\u201d on "
                   f"{datetime.fromisoformat(meeting['start']).strftime('%a %d %b %Y %H:%M')} (UTC). "
                   f"(booked by OfficeFlow for {BOB})"]
    assert {n.status for n in notifications()} == {"processed"}

    # The same push again (a replay) and an older message number (stale) are acknowledged, not stored.
    [push] = [d for d in sandbox.state("google")["push_deliveries"]
              if d["headers"]["X-Goog-Resource-State"] == "exists"][-1:]
    stored = len(notifications())
    for number in (push["headers"]["X-Goog-Message-Number"], "1"):
        replay = gateway.post("/calendar/google/notifications", headers={**push["headers"],
                                                                         "X-Goog-Message-Number": number})
        assert replay.status_code == 200 and replay.json()["status"] == "ignored"
    assert len(notifications()) == stored and len(changes()) == 1 and len(slack_dms(sandbox)) == 1


def test_google_forged_unknown_and_malformed_notifications_are_refused(gateway, sandbox):
    google_user(sandbox, BOB)
    book("google")
    sub = subscription_of("google")
    headers = {"X-Goog-Channel-ID": sub.channel_id, "X-Goog-Channel-Token": "forged", "X-Goog-Resource-ID":
               sub.resource_id, "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "999"}
    wait_until(lambda: notifications(), what="the sync message")
    before = len(notifications())
    assert_error(gateway.post("/calendar/google/notifications", headers=headers), 401, "invalid_token")
    assert_error(gateway.post("/calendar/google/notifications", headers={**headers, "X-Goog-Channel-Token": ""}),
                 401, "invalid_token")
    assert_error(gateway.post("/calendar/google/notifications", headers={**headers, "X-Goog-Channel-ID": "nope"}),
                 404, "unknown_channel")
    assert_error(gateway.post("/calendar/google/notifications", headers={**headers, "X-Goog-Message-Number": "x"}),
                 400, "invalid_notification")
    right = sync.decrypt(sub.secret_encrypted)
    assert_error(gateway.post("/calendar/google/notifications", headers={
        **headers, "X-Goog-Channel-Token": right, "X-Goog-Resource-ID": "another-resource"}), 401, "invalid_token")
    with session_scope() as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == sub.id)
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_error(gateway.post("/calendar/google/notifications", headers={**headers, "X-Goog-Channel-Token": right}),
                 410, "channel_expired")
    assert len(notifications()) == before  # nothing refused was stored
    with session_scope() as session:
        from include.officeflow.store.models import AuditLog

        refused = list(session.scalars(select(AuditLog).where(AuditLog.action == "calendar.notification.refused")))
    assert {r.details["reason"] for r in refused} == {"invalid_token", "expired"}


def test_expired_google_channel_is_replaced_by_the_maintenance_operator(gateway, sandbox):
    google_user(sandbox, BOB)
    meeting = book("google")
    old = subscription_of("google")
    with session_scope() as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == old.id)
                        .values(expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    result = RenewCalendarSubscriptionsOperator(task_id="renew").execute({})
    new = subscription_of("google")
    assert result["renewed"] == [new.id] and new.id != old.id and new.sync_token == old.sync_token
    assert sync.get_subscription(old.id).status == "stopped"
    assert sandbox.state("google")["calendar_channels"][old.channel_id]["stopped"] is True
    with google_client(sandbox, BOB) as bob:  # the new channel carries the next change
        bob.patch(f"/calendars/primary/events/{meeting['event_id']}",
                  json={"attendees": [{"email": BOB, "responseStatus": "declined"}]}).raise_for_status()
    wait_until(lambda: [c for c in changes() if c.action == "notified"], what="the change via the new channel")


# --- Microsoft ------------------------------------------------------------------------------------------

@pytest.fixture
def graph_users(sandbox):
    token = request_token(sandbox).json()["access_token"]
    with httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0", timeout=20,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for name in ("admin", "bob"):
            client.post("/users", json={
                "accountEnabled": True, "displayName": name, "mailNickname": name,
                "userPrincipalName": f"{name}@officeflow.test",
                "passwordProfile": {"password": PASSWORD}}).raise_for_status()
        yield client


def test_graph_handshake_decline_and_slack_notice(gateway, sandbox, graph_users):
    echo = gateway.post("/calendar/microsoft/notifications", params={"validationToken": "Validation: abc 123"})
    assert echo.status_code == 200 and echo.text == "Validation: abc 123"
    assert echo.headers["content-type"].startswith("text/plain")

    meeting = book("microsoft")
    sub = subscription_of("microsoft")
    assert sandbox.state("microsoft")["subscriptions"][sub.channel_id]["notificationUrl"].endswith(
        "/calendar/microsoft/notifications")
    graph_users.post(f"/users/{BOB}/events/{meeting['event_id']}/decline", json={}).raise_for_status()
    [change] = wait_until(lambda: [c for c in changes() if c.action == "notified"], what="the change")
    assert change.kind == "declined" and change.attendee == BOB
    wait_until(lambda: [t for t in slack_dms(sandbox) if f"{BOB} declined" in t], what="the Slack notice")

    [delivery] = [d for d in sandbox.state("microsoft")["notification_deliveries"]
                  if d["body"]["value"][0]["changeType"] == "updated"]
    assert delivery["status"] == 202
    again = gateway.post("/calendar/microsoft/notifications", json=delivery["body"])
    assert again.status_code == 202 and again.json() == {"status": "accepted", "accepted": 0, "ignored": 1}
    item = delivery["body"]["value"][0]
    stored = len(notifications())
    assert_error(gateway.post("/calendar/microsoft/notifications",
                              json={"value": [{**item, "clientState": "forged"}]}), 401, "invalid_client_state")
    assert_error(gateway.post("/calendar/microsoft/notifications",
                              json={"value": [{**item, "subscriptionId": "unknown"}]}), 404, "unknown_subscription")
    assert_error(gateway.post("/calendar/microsoft/notifications", content=b"{not json"), 400, "invalid_notification")
    assert len(notifications()) == stored and len(slack_dms(sandbox)) == 1


def test_expired_graph_subscription_is_replaced_and_a_live_one_renewed(gateway, sandbox, graph_users):
    book("microsoft")
    first = subscription_of("microsoft")
    soon = datetime.now(UTC) + timedelta(minutes=5)
    with session_scope() as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == first.id).values(expires_at=soon))
    renewed = RenewCalendarSubscriptionsOperator(task_id="renew").execute({})
    assert renewed["renewed"] == [first.id]
    again = sync.get_subscription(first.id)
    assert again.expires_at > soon + timedelta(hours=60) and again.renewed_at is not None
    # Graph deleted it meanwhile (expired at Graph): a new subscription replaces it.
    graph_users.delete(f"/subscriptions/{first.channel_id}").raise_for_status()
    with session_scope() as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == first.id).values(expires_at=soon))
    replaced = RenewCalendarSubscriptionsOperator(task_id="renew").execute({})
    current = subscription_of("microsoft")
    assert replaced["renewed"] == [current.id] and current.id != first.id
    assert sync.get_subscription(first.id).status == "expired"
    assert current.channel_id in sandbox.state("microsoft")["subscriptions"]


# --- management API -------------------------------------------------------------------------------------

def test_management_api_subscribes_lists_and_keeps_tenants_apart(gateway, sandbox, auth_headers, store_url):
    from include.officeflow.auth import organizations

    admin = auth_headers("admin")
    created = gateway.post("/api/v1/calendar/subscriptions", headers=admin,
                           json={"provider": "google", "calendar": "People.Manager@officeflow.test"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["calendar"] == "people.manager@officeflow.test" and body["status"] == "active"
    assert "secret" not in str(body).lower()
    again = gateway.post("/api/v1/calendar/subscriptions", headers=admin,
                         json={"provider": "google", "calendar": "people.manager@officeflow.test"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    listed = gateway.get("/api/v1/calendar/subscriptions", headers=admin).json()
    assert [s["id"] for s in listed["subscriptions"]] == [body["id"]]
    assert_error(gateway.post("/api/v1/calendar/subscriptions", headers=admin,
                              json={"provider": "yahoo", "calendar": "x@officeflow.test"}), 422, "validation_error")
    assert_error(gateway.get("/api/v1/calendar/subscriptions"), 401, "unauthorized")
    viewer = auth_headers("viewer")
    assert_error(gateway.get("/api/v1/calendar/subscriptions", headers=viewer), 403, "forbidden")
    assert gateway.get("/api/v1/calendar/changes", headers=admin).json() == {"changes": [], "total_entries": 0}
    # An HR Manager of another organization reads workflows but sees none of default's subscriptions,
    # and may not subscribe (no create permission on OfficeFlow Workflows).
    truncate(store_url, "user_organizations")
    organizations.set_user("hr", {"acme"}, by="test")
    try:
        hr = auth_headers("hr")
        assert gateway.get("/api/v1/calendar/subscriptions", headers=hr).json()["subscriptions"] == []
        assert_error(gateway.post("/api/v1/calendar/subscriptions", headers=hr,
                                  json={"provider": "google", "calendar": "x@officeflow.test"}), 403, "forbidden")
    finally:
        truncate(store_url, "user_organizations")


def test_google_move_then_cancel_are_recorded_once_each(gateway, sandbox):
    google_user(sandbox, BOB)
    meeting = book("google")
    wait_until(lambda: notifications(), what="the sync message")
    start = datetime.fromisoformat(meeting["start"]) + timedelta(days=1)
    with google_client(sandbox, ADMIN) as cal:
        cal.patch(f"/calendars/primary/events/{meeting['event_id']}", json={
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()}}).raise_for_status()
        wait_until(lambda: [c for c in changes() if c.kind == "moved" and c.action == "notified"], what="the move")
        cal.delete(f"/calendars/primary/events/{meeting['event_id']}").raise_for_status()
    wait_until(lambda: [c for c in changes() if c.kind == "cancelled" and c.action == "notified"], what="the cancel")
    assert sorted(c.kind for c in changes()) == ["cancelled", "moved"]
    texts = wait_until(lambda: len(slack_dms(sandbox)) == 2 and slack_dms(sandbox), what="two notices")
    assert "moved from" in texts[0] and "was cancelled" in texts[1]
    [row] = sync.booked("google", ADMIN)
    assert row.status == "cancelled" and row.starts_at == start  # the move moved the booked meeting too


# --- rebooking ------------------------------------------------------------------------------------------

def decline(provider: str, sandbox, event_id: str, graph_users=None) -> None:
    if provider == "google":
        with google_client(sandbox, BOB) as bob:
            bob.patch(f"/calendars/primary/events/{event_id}",
                      json={"attendees": [{"email": BOB, "responseStatus": "declined"}]}).raise_for_status()
    else:
        graph_users.post(f"/users/{BOB}/events/{event_id}/decline", json={}).raise_for_status()


def organizer_view(provider: str, sandbox, event_id: str, graph_users=None) -> tuple[datetime, str]:
    """The event's start and Bob's response, as the organizer's calendar shows them."""
    if provider == "google":
        with google_client(sandbox, ADMIN) as cal:
            event = cal.get(f"/calendars/primary/events/{event_id}").raise_for_status().json()
        [bob] = [a for a in event["attendees"] if a["email"] == BOB]
        return datetime.fromisoformat(event["start"]["dateTime"]), bob["responseStatus"]
    event = graph_users.get(f"/users/{ADMIN}/events/{event_id}",
                            headers={"Prefer": 'outlook.timezone="UTC"'}).raise_for_status().json()
    [bob] = [a for a in event["attendees"] if a["emailAddress"]["address"].lower() == BOB]
    return (datetime.fromisoformat(event["start"]["dateTime"][:26]).replace(tzinfo=UTC),
            bob["status"]["response"])


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_declined_meeting_is_rebooked_in_the_next_common_free_slot(gateway, sandbox, provider, request):
    graph_users = request.getfixturevalue("graph_users") if provider == "microsoft" else None
    if provider == "google":
        google_user(sandbox, BOB)
    meeting = book(provider, on_change="rebook")
    booked_start = datetime.fromisoformat(meeting["start"])
    decline(provider, sandbox, meeting["event_id"], graph_users)

    [change] = wait_until(lambda: [c for c in changes() if c.action != "none" or c.error], what="the change")
    assert (change.kind, change.attendee, change.action, change.error) == ("declined", BOB, "rebooked", None)
    new_start = booked_start + timedelta(minutes=30)  # right after it: nobody is busy there
    assert organizer_view(provider, sandbox, meeting["event_id"], graph_users) == (
        new_start, "needsAction" if provider == "google" else "none")  # everyone is asked again
    [row] = sync.booked(provider, ADMIN)
    assert (row.status, row.starts_at, row.ends_at) == ("rebooked", new_start, new_start + timedelta(minutes=30))
    assert [r["to"] for r in row.booking["rebooks"]] == [new_start.isoformat()]
    [text] = wait_until(lambda: [t for t in slack_dms(sandbox) if "declined" in t], what="the Slack notice")
    assert f"so OfficeFlow moved it to {new_start.strftime('%a %d %b %Y %H:%M')} (UTC)" in text

    # OfficeFlow's own move reaches the gateway too, and is no change of the booked meeting
    wait_until(lambda: len(notifications()) >= 2 and all(n.status == "processed" for n in notifications()),
             what="the move's own notification")
    assert len(changes()) == 1 and len(slack_dms(sandbox)) == 1


def test_rebooking_without_a_free_slot_or_past_the_limit_leaves_the_meeting(gateway, sandbox, settings_env):
    settings_env.setenv("OFFICEFLOW_CALENDAR_REBOOK_SEARCH_DAYS", "2")
    google_user(sandbox, BOB)
    first = book("google", on_change="rebook")
    second = book("google", run_id="manual__sync-2", on_change="rebook")
    end = datetime.fromisoformat(first["end"])
    with google_client(sandbox, BOB) as bob:  # Bob is busy for the three days after the first meeting
        bob.post("/calendars/primary/events", json={
            "summary": "Offsite", "start": {"dateTime": end.isoformat()},
            "end": {"dateTime": (end + timedelta(days=3)).isoformat()}}).raise_for_status()
    [row] = sync.booked("google", ADMIN, [second["event_id"]])
    sync.move_booking(row.id, start=row.starts_at, end=row.ends_at, status="booked",
                      rebooks=[{"change_id": f"c{i}", "from": "", "to": ""} for i in range(3)])

    decline("google", sandbox, first["event_id"])
    [change] = wait_until(lambda: [c for c in changes() if c.action != "none" or c.error], what="the first change")
    assert change.action == "rebook_failed" and change.error.startswith("no common free slot in the 2 days")
    decline("google", sandbox, second["event_id"])
    wait_until(lambda: len([c for c in changes() if c.action != "none"]) == 2, what="the second change")
    [limited] = [c for c in changes() if c.id != change.id]
    assert limited.action == "rebook_failed" and limited.error == "already rebooked 3 times; not moved again"
    for meeting in (first, second):  # both stay where they were
        assert organizer_view("google", sandbox, meeting["event_id"])[0] == datetime.fromisoformat(meeting["start"])
    texts = wait_until(lambda: len(slack_dms(sandbox)) == 2 and slack_dms(sandbox), what="two notices")
    assert all("OfficeFlow could not rebook it" in t and "please find a new time" in t for t in texts)


# --- reminders ------------------------------------------------------------------------------------------

def test_reminders_go_out_once_and_a_failed_one_is_retried(gateway, sandbox):
    from airflow.sdk.exceptions import AirflowException

    from operators.calendar import MeetingRemindersOperator

    soon = datetime.now(UTC) + timedelta(minutes=30)
    for organizer, event_id in ((ADMIN, "evt-reminded"), ("nobody-in-slack@officeflow.test", "evt-nobody")):
        sync.record_booking({"provider": "google", "event_id": event_id, "start": soon.isoformat(),
                             "end": (soon + timedelta(minutes=30)).isoformat(), "attendees": [BOB],
                             "join_url": "https://meet.google.com/abc-defg-hij"},
                            organization_id="default", dag_id="employee_onboarding", run_id="r1", task_id="t",
                            on_change="notify", booking={"title": "IT setup", "time_zone": "Europe/Berlin"},
                            organizer=organizer)
    later = datetime.now(UTC) + timedelta(hours=5)
    sync.record_booking({"provider": "google", "event_id": "evt-later", "start": later.isoformat(),
                         "end": (later + timedelta(minutes=30)).isoformat(), "attendees": [BOB]},
                        organization_id="default", dag_id="d", run_id="r2", task_id="t", on_change="notify",
                        booking={"title": "Later"}, organizer=ADMIN)
    reminders = MeetingRemindersOperator(task_id="remind", lead_minutes=60)
    with pytest.raises(AirflowException, match="reminders not sent"):
        reminders.execute({})  # the organizer without a Slack account fails the task (retried next run)
    [text] = [t for t in slack_dms(sandbox) if "Reminder" in t]
    assert "\u201cIT setup\u201d with bob@officeflow.test" in text and "https://meet.google.com/abc-defg-hij" in text
    with pytest.raises(AirflowException):
        reminders.execute({})
    assert len([t for t in slack_dms(sandbox) if "Reminder" in t]) == 1  # once per meeting
    by_event = {m.event_id: m for m in sync.booked("google", ADMIN)}
    assert by_event["evt-reminded"].reminder_sent_at is not None and by_event["evt-later"].reminder_sent_at is None
    [nobody] = sync.booked("google", "nobody-in-slack@officeflow.test")
    assert nobody.reminder_sent_at is None  # released: the next run tries again
