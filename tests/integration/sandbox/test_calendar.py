"""The calendar parts of the sandbox over raw HTTP: Google Calendar v3 (sandbox/google/calendar.py)
and Graph calendar (sandbox/microsoft/calendar.py). The operator tests
(tests/integration/operators/test_calendar.py) drive the same routes through the real client libraries."""

from __future__ import annotations

import httpx
import pytest

from tests.harness.sandbox_clients import DIR, PASSWORD, google_client, google_user, request_token

ADMIN = "admin@officeflow.test"


# --- Google ------------------------------------------------------------------------------------------

def g_event(**overrides):
    return {"summary": "Sync", "start": {"dateTime": "2026-12-01T10:00:00+01:00"},
            "end": {"dateTime": "2026-12-01T10:30:00", "timeZone": "Europe/Berlin"}, **overrides}


def test_google_insert_with_client_id_and_meet_link_then_duplicate_is_409(sandbox):
    google_user(sandbox, "bob@officeflow.test")
    with google_client(sandbox, ADMIN) as cal:
        body = g_event(id="abc0123v", attendees=[{"email": "bob@officeflow.test"}],
                       conferenceData={"createRequest": {"requestId": "req-1"}})
        created = cal.post("/calendars/primary/events", params={"conferenceDataVersion": 1, "sendUpdates": "all"},
                           json=body)
        assert created.status_code == 200, created.text
        event = created.json()
        assert event["id"] == "abc0123v" and event["hangoutLink"].startswith("https://meet.google.com/")
        assert event["conferenceData"]["entryPoints"][0]["uri"] == event["hangoutLink"]
        again = cal.post("/calendars/primary/events", params={"conferenceDataVersion": 1}, json=body)
        assert again.status_code == 409
        assert again.json()["error"]["message"] == "The requested identifier already exists."
        assert cal.post("/calendars/primary/events", json=g_event(id="UPPER")).status_code == 400
        assert cal.post("/calendars/primary/events", json=g_event(id="wxyz1")).status_code == 400
        no_conference = cal.post("/calendars/primary/events", json={**body, "id": "abc01230"})
        assert "hangoutLink" not in no_conference.json()  # without conferenceDataVersion=1
    state = sandbox.state("google")
    assert [n["to"] for n in state["calendar_notifications"]] == ["bob@officeflow.test"]


def test_google_freebusy_counts_attended_events_and_flags_unknown_calendars(sandbox):
    google_user(sandbox, "bob@officeflow.test")
    with google_client(sandbox, ADMIN) as cal:
        cal.post("/calendars/primary/events", json=g_event(attendees=[{"email": "bob@officeflow.test"}]))
        answer = cal.post("/freeBusy", json={"timeMin": "2026-12-01T00:00:00Z", "timeMax": "2026-12-02T00:00:00Z",
                                             "items": [{"id": "bob@officeflow.test"}, {"id": "nobody@else.test"}]})
        assert answer.status_code == 200, answer.text
        calendars = answer.json()["calendars"]
        assert calendars["bob@officeflow.test"]["busy"] == [{"start": "2026-12-01T09:00:00Z",
                                                             "end": "2026-12-01T09:30:00Z"}]
        assert calendars["nobody@else.test"]["errors"][0]["reason"] == "notFound"
        assert cal.post("/freeBusy", json={"timeMax": "2026-12-02T00:00:00Z"}).status_code == 400


def test_google_patch_delete_and_other_calendars(sandbox):
    google_user(sandbox, "bob@officeflow.test")
    with google_client(sandbox, ADMIN) as cal:
        event = cal.post("/calendars/primary/events", json=g_event()).json()
        moved = cal.patch(f"/calendars/primary/events/{event['id']}",
                          json={"start": {"dateTime": "2026-12-02T10:00:00Z"},
                                "end": {"dateTime": "2026-12-02T11:00:00Z"}})
        assert moved.status_code == 200 and moved.json()["sequence"] == 1
        listed = cal.get("/calendars/primary/events", params={"timeMin": "2026-12-02T00:00:00Z"}).json()
        assert [e["id"] for e in listed["items"]] == [event["id"]]
        assert cal.delete(f"/calendars/primary/events/{event['id']}").status_code == 204
        assert cal.get(f"/calendars/primary/events/{event['id']}").json()["status"] == "cancelled"
        assert cal.delete(f"/calendars/primary/events/{event['id']}").status_code == 410
        assert cal.post("/calendars/bob@officeflow.test/events", json=g_event()).status_code == 403
    with google_client(sandbox, ADMIN, scope=DIR) as wrong_scope:
        denied = wrong_scope.post("/calendars/primary/events", json=g_event())
        assert denied.status_code == 403
        assert denied.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"


# --- Microsoft -----------------------------------------------------------------------------------------

@pytest.fixture
def graph(sandbox):
    token = request_token(sandbox).json()["access_token"]
    with httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0", headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as client:
        for upn in ("ada@officeflow.test", "bob@officeflow.test"):
            created = client.post("/users", json={"accountEnabled": True, "displayName": upn, "userPrincipalName": upn,
                                                  "mailNickname": upn.split("@")[0],
                                                  "passwordProfile": {"password": PASSWORD}})
            assert created.status_code == 201, created.text
        yield client


def m_event(**overrides):
    return {"subject": "Sync", "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-12-01T10:30:00", "timeZone": "Europe/Berlin"},
            "attendees": [{"emailAddress": {"address": "bob@officeflow.test"}, "type": "required"}], **overrides}


def test_graph_event_with_teams_and_transaction_id(sandbox, graph):
    body = m_event(isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness", transactionId="tx-1")
    first = graph.post("/users/ada@officeflow.test/events", json=body)
    assert first.status_code == 201, first.text
    event = first.json()
    assert event["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert event["start"] == {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    second = graph.post("/users/ada@officeflow.test/events", json={**body, "subject": "Other"})
    assert second.status_code == 201 and second.json()["id"] == event["id"]
    assert len(sandbox.state("microsoft")["events"]) == 1
    missing = graph.post("/users/ada@officeflow.test/events", json={"subject": "x"})
    assert missing.status_code == 400


def test_graph_get_schedule(graph):
    graph.post("/users/ada@officeflow.test/events", json=m_event())
    answer = graph.post("/users/ada@officeflow.test/calendar/getSchedule", json={
        "schedules": ["bob@officeflow.test", "ghost@officeflow.test"],
        "startTime": {"dateTime": "2026-12-01T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}, "availabilityViewInterval": 30})
    assert answer.status_code == 200, answer.text
    bob, ghost = answer.json()["value"]
    assert bob["availabilityView"] == "0020"  # 09:00-09:30 UTC busy
    assert bob["scheduleItems"][0]["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}
    assert ghost["error"]["responseCode"] == "ErrorMailRecipientNotFound"


def test_graph_patch_cancel_and_delete(sandbox, graph):
    event = graph.post("/users/ada@officeflow.test/events", json=m_event()).json()
    path = f"/users/ada@officeflow.test/events/{event['id']}"
    moved = graph.patch(path, json={"start": {"dateTime": "2026-12-03T09:00:00", "timeZone": "UTC"},
                                    "end": {"dateTime": "2026-12-03T10:00:00", "timeZone": "UTC"}},
                        headers={"Prefer": 'outlook.timezone="UTC"'})
    assert moved.status_code == 200 and moved.json()["start"]["dateTime"] == "2026-12-03T09:00:00.0000000"
    view = graph.get("/users/bob@officeflow.test/calendarView",
                     params={"startDateTime": "2026-12-03T00:00:00", "endDateTime": "2026-12-04T00:00:00"}).json()
    assert [e["id"] for e in view["value"]] == [event["id"]]
    assert graph.post(f"{path}/cancel", json={"comment": "Sorry"}).status_code == 202
    assert graph.get(path).status_code == 404
    assert graph.post(f"{path}/cancel", json={}).status_code == 404
    assert sandbox.state("microsoft")["cancellations"][0]["comment"] == "Sorry"
    other = graph.post("/users/ada@officeflow.test/events", json=m_event()).json()
    assert graph.delete(f"/users/ada@officeflow.test/events/{other['id']}").status_code == 204
    gone = graph.delete(f"/users/ada@officeflow.test/events/{other['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
