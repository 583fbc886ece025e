"""Meeting operators (operators/calendar.py) with both providers against the sandbox: Google Calendar through
google-api-python-client (GoogleCalendarHook), Graph through the microsoft-azure provider's Kiota hook over
the TLS listener (MicrosoftGraphCalendarHook). Busy blocks are created through the APIs themselves; the
assertions read the sandbox's state and request log."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.officeflow.calendar import find_slot, google_event_id, transaction_id
from include.officeflow.run_keys import run_key
from operators.calendar import (
    CancelMeetingOperator,
    CancelOrganizedMeetingsOperator,
    ScheduleMeetingOperator,
    UpdateMeetingOperator,
)
from operators.hooks.google_calendar import GoogleCalendarHook
from operators.hooks.msgraph_calendar import MicrosoftGraphCalendarHook
from tests.harness.sandbox_clients import PASSWORD, google_client, google_user, request_token

ADA, BOB, CY = "ada@officeflow.test", "bob@officeflow.test", "cy@officeflow.test"
BERLIN = "Europe/Berlin"


def context(run_id: str = "manual__2026-11-30") -> Any:  # the parts of the task Context run_key reads
    return {"ti": SimpleNamespace(dag_id="onboarding", run_id=run_id, task_id="meet", map_index=-1)}


class Calendars:
    """Users, busy blocks and stored events of one provider in the sandbox."""

    def __init__(self, sandbox, provider: str) -> None:
        self.sandbox, self.provider = sandbox, provider
        if provider == "google":
            for email in (ADA, BOB, CY):
                google_user(sandbox, email)
        else:
            token = request_token(sandbox).json()["access_token"]
            self.graph = httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0", timeout=10,
                                      headers={"Authorization": f"Bearer {token}"})
            for upn in (ADA, BOB, CY):
                self.graph.post("/users", json={"accountEnabled": True, "displayName": upn, "userPrincipalName": upn,
                                                "mailNickname": upn.split("@")[0],
                                                "passwordProfile": {"password": PASSWORD}}).raise_for_status()

    def block(self, who: str, start: datetime, end: datetime) -> None:
        """A busy event in ``who``'s own calendar."""
        if self.provider == "google":
            with google_client(self.sandbox, who) as cal:
                cal.post("/calendars/primary/events", json={"summary": "Busy", "start": {"dateTime": start.isoformat()},
                                                            "end": {"dateTime": end.isoformat()}}).raise_for_status()
        else:
            self.graph.post(f"/users/{who}/events", json={"subject": "Busy", "start": _graph_time(start),
                                                          "end": _graph_time(end)}).raise_for_status()

    def meeting(self, organizer: str, start: datetime, attendees: tuple[str, ...] = (),
                minutes: int = 30) -> str:
        """A meeting ``organizer`` books in their own calendar with ``attendees``; its event id."""
        end = start + timedelta(minutes=minutes)
        if self.provider == "google":
            with google_client(self.sandbox, organizer) as cal:
                response = cal.post("/calendars/primary/events", json={
                    "summary": "Sync", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()},
                    "attendees": [{"email": a} for a in attendees]})
        else:
            response = self.graph.post(f"/users/{organizer}/events", json={
                "subject": "Sync", "start": _graph_time(start), "end": _graph_time(end),
                "attendees": [{"emailAddress": {"address": a}} for a in attendees]})
        response.raise_for_status()
        return str(response.json()["id"])

    def live(self) -> set[str]:
        """Ids of the events not cancelled (Google keeps cancelled events, Graph drops them)."""
        if self.provider == "google":
            events = self.sandbox.state("google").get("calendar_events", {}).values()
            return {e["id"] for e in events if e["status"] != "cancelled"}
        return set(self.sandbox.state("microsoft").get("events", {}))

    def cancel_requests(self) -> list[dict[str, Any]]:
        """The cancellations sent to the provider (Google DELETE, Graph POST .../cancel)."""
        if self.provider == "google":
            return [r for r in self.sandbox.requests("google") if r["method"] == "DELETE" and "/events/" in r["path"]]
        return [r for r in self.sandbox.requests("microsoft") if r["path"].endswith("/cancel")]

    def meetings(self) -> list[dict[str, Any]]:
        """Events Ada organizes, as ``{id, start, end, attendees, cancelled}`` with UTC times."""
        if self.provider == "google":
            events = self.sandbox.state("google").get("calendar_events", {}).values()
            return [{"id": e["id"], "start": _utc(e["start"]["dateTime"]), "end": _utc(e["end"]["dateTime"]),
                     "attendees": sorted(a["email"] for a in e["attendees"]), "cancelled": e["status"] == "cancelled",
                     "join": e.get("hangoutLink")}
                    for e in events if e["organizer"]["email"] == ADA]
        data = self.sandbox.state("microsoft")
        ada = next(u["id"] for u in data["users"].values() if u["userPrincipalName"] == ADA)
        return [{"id": e["id"], "start": _utc(e["_start"]), "end": _utc(e["_end"]),
                 "attendees": sorted(a["emailAddress"]["address"] for a in e["attendees"]), "cancelled": False,
                 "join": (e.get("onlineMeeting") or {}).get("joinUrl")}
                for e in data.get("events", {}).values() if e["organizerId"] == ada]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.fixture(params=["google", "microsoft"])
def cal(request, sandbox):
    calendars = Calendars(sandbox, request.param)
    yield calendars
    if request.param == "microsoft":
        calendars.graph.close()


def schedule(provider: str, **overrides: Any) -> ScheduleMeetingOperator:
    args: dict[str, Any] = {"task_id": "meet", "provider": provider, "organizer": ADA, "attendees": [BOB, CY],
                            "title": "Welcome, Bob", "description": "First-day sync", "duration": 30,
                            "window_start": "2026-12-01T00:00:00", "window_end": "2026-12-04T00:00:00",
                            "time_zone": BERLIN, **overrides}
    return ScheduleMeetingOperator(**args)


def at(text: str, zone: str = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


# --- slot finding (pure) --------------------------------------------------------------------------------

def test_find_slot_rules():
    zone = ZoneInfo(BERLIN)
    common: dict[str, Any] = {"duration": timedelta(minutes=60), "day_start": time(9), "day_end": time(17),
                              "zone": zone}
    assert find_slot([], window_start=at("2026-12-01T09:10"), window_end=at("2026-12-02T00:00"), **common) == \
        (at("2026-12-01T09:15"), at("2026-12-01T10:15"))
    busy = [(at("2026-12-01T09:00"), at("2026-12-01T16:30"))]
    slot = find_slot(busy, window_start=at("2026-12-01T00:00"), window_end=at("2026-12-03T00:00"), **common)
    assert slot is not None and slot[0] == at("2026-12-02T09:00")
    assert find_slot([], window_start=at("2026-12-05T00:00"), window_end=at("2026-12-06T23:00"), **common) is None


def test_idempotency_keys_are_stable_and_valid():
    key = run_key(context(), "meet")
    assert key == "onboarding/manual__2026-11-30/meet/-1"
    event_id = google_event_id(key)
    assert event_id == google_event_id(key) and set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")
    assert 5 <= len(event_id) <= 1024 and transaction_id(key) == transaction_id(key)
    assert google_event_id(run_key(context("other"), "meet")) != event_id


# --- schedule -------------------------------------------------------------------------------------------

def test_busy_attendee_pushes_the_slot_and_the_meeting_has_a_link(cal):
    cal.block(BOB, at("2026-12-01T09:00"), at("2026-12-01T10:00"))
    cal.block(CY, at("2026-12-01T10:00"), at("2026-12-01T10:45"))
    result = schedule(cal.provider).execute(context())
    assert _utc(result["start"]) == at("2026-12-01T10:45") and _utc(result["end"]) == at("2026-12-01T11:15")
    [meeting] = cal.meetings()
    assert meeting["id"] == result["event_id"] and meeting["start"] == at("2026-12-01T10:45")
    assert meeting["attendees"] == [BOB, CY]
    assert result["join_url"] and result["join_url"] == meeting["join"]
    assert result["join_url"].startswith("https://meet.google.com/" if cal.provider == "google"
                                         else "https://teams.microsoft.com/")


def test_working_hours_time_zone_and_weekend(cal):
    # Saturday morning in New York: the first working slot is Monday 09:00 there (14:00 UTC).
    result = schedule(cal.provider, time_zone="America/New_York", window_start="2026-12-05T06:00:00",
                      window_end="2026-12-09T00:00:00", working_hours=("09:00", "17:00"),
                      duration=45).execute(context())
    assert _utc(result["start"]) == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert _utc(result["end"]) == datetime(2026, 12, 7, 14, 45, tzinfo=UTC)


def test_no_common_slot_is_a_clear_failure(cal):
    cal.block(BOB, at("2026-12-01T08:00"), at("2026-12-01T18:00"))
    with pytest.raises(AirflowFailException, match=r"no 0:30:00 slot .* all free between 2026-12-01T00:00:00\+01:00"):
        schedule(cal.provider, window_end="2026-12-02T00:00:00").execute(context())
    assert cal.meetings() == []


def test_executing_twice_books_once(cal):
    first = schedule(cal.provider).execute(context())
    second = schedule(cal.provider).execute(context())
    assert second["event_id"] == first["event_id"] and second["start"] == first["start"]
    assert len(cal.meetings()) == 1
    third = schedule(cal.provider).execute(context("another-run"))  # another run: another meeting
    assert third["event_id"] != first["event_id"] and len(cal.meetings()) == 2


def test_lost_create_answer_does_not_double_book(cal, sandbox):
    path = "/calendar/v3/calendars/primary/events" if cal.provider == "google" else f"/v1.0/users/{ADA}/events"
    sandbox.fault(cal.provider, method="POST", path=path, status=500, after=True)
    result = schedule(cal.provider).execute(context())
    assert [m["id"] for m in cal.meetings()] == [result["event_id"]]
    creates = [r for r in sandbox.requests(cal.provider) if r["method"] == "POST" and r["path"].endswith("/events")]
    assert creates[0]["status"] == 500


def test_rate_limit_is_honoured(cal, sandbox):
    path = "/freeBusy" if cal.provider == "google" else "/calendar/getSchedule"
    sandbox.fault(cal.provider, method="POST", path=path, status=429, retry_after=1)
    result = schedule(cal.provider).execute(context())
    assert result["event_id"]
    looks = [r for r in sandbox.requests(cal.provider) if r["path"].endswith(path)]
    assert [r["status"] for r in looks] == [429, 200]
    assert looks[1]["at"] - looks[0]["at"] >= 0.9


def test_validation_happens_before_any_call(cal, sandbox):
    before = len(sandbox.requests(cal.provider))
    for bad in ({"attendees": ["not-an-address"]}, {"time_zone": "Mars/Olympus"}, {"title": " "},
                {"window_end": "2026-11-30T00:00:00"}, {"working_hours": ("17:00", "09:00")}):
        with pytest.raises(AirflowFailException):
            schedule(cal.provider, **bad).execute(context())
    assert len(sandbox.requests(cal.provider)) == before


# --- update / cancel ------------------------------------------------------------------------------------

def test_update_moves_the_meeting_and_changes_attendees(cal):
    booked = schedule(cal.provider).execute(context())
    moved = UpdateMeetingOperator(task_id="move", provider=cal.provider, organizer=ADA, event_id=booked["event_id"],
                                  start="2026-12-03T14:00:00", duration=60, attendees=[BOB],
                                  time_zone=BERLIN).execute(context())
    assert _utc(moved["start"]) == at("2026-12-03T14:00") and _utc(moved["end"]) == at("2026-12-03T15:00")
    [meeting] = cal.meetings()
    assert (meeting["start"], meeting["end"], meeting["attendees"]) == (at("2026-12-03T14:00"), at("2026-12-03T15:00"),
                                                                        [BOB])


def test_cancel_is_idempotent(cal):
    booked = schedule(cal.provider).execute(context())

    def cancel() -> dict[str, Any]:
        return CancelMeetingOperator(task_id="cancel", provider=cal.provider, organizer=ADA,
                                     event_id=booked["event_id"], comment="Start date moved").execute(context())

    assert cancel()["cancelled"] is True
    assert cancel() == {"provider": cal.provider, "event_id": booked["event_id"], "cancelled": False,
                        "already_cancelled": True}
    if cal.provider == "google":
        assert [m["cancelled"] for m in cal.meetings()] == [True]
    else:
        assert cal.meetings() == []
        assert cal.sandbox.state("microsoft")["cancellations"][0]["comment"] == "Start date moved"


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_booked_meeting_is_announced_in_slack(sandbox, provider):
    """The provider invites the attendees; OfficeFlow also posts the meeting (time, people, join link)."""
    from operators.slack import SlackMessageOperator

    Calendars(sandbox, provider)
    meeting = schedule(provider).execute(context())
    posted = SlackMessageOperator(task_id="announce", template="meeting_scheduled", channel="#general",
                                  variables={"title": "Welcome, Bob", "meeting": meeting}).execute(context={})
    [message] = [m for m in sandbox.state("slack")["messages"][posted["channel"]] if m["ts"] == posted["ts"]]
    assert message["text"].startswith(f"Welcome, Bob: {meeting['start']} to {meeting['end']}")
    assert message["blocks"][0]["text"]["text"] == ":calendar: Welcome, Bob"
    assert f"{BOB}, {CY}" in message["blocks"][2]["text"]["text"]
    assert meeting["join_url"] and message["blocks"][3]["elements"][0]["url"] == meeting["join_url"]


# --- offboarding: cancel the meetings a leaver organizes ------------------------------------------------

def cancel_organized(provider: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"task_id": "cancel_future_meetings", "provider": provider, "organizer": ADA,
                            "comment": "Ada has left the company.", **overrides}
    return CancelOrganizedMeetingsOperator(**args).execute(context())  # type: ignore[no-any-return]


def _soon(days: float, hour: int = 10) -> datetime:
    """``days`` from now at ``hour``:00 UTC (relative: the operator's default window starts now)."""
    return datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)


def test_cancels_the_future_meetings_the_leaver_organizes_and_nothing_else(cal, sandbox):
    past = cal.meeting(ADA, _soon(-3), (BOB,))
    first = cal.meeting(ADA, _soon(1), (BOB, CY))
    later = cal.meeting(ADA, _soon(40), (CY,))
    next_year = cal.meeting(ADA, _soon(400), (BOB,))  # after the default window (365 days)
    invited = cal.meeting(BOB, _soon(2), (ADA, CY))  # Ada only attends: Bob's meeting stays
    result = cancel_organized(cal.provider)
    assert result == {"cancelled": [first, later], "already_cancelled": [], "count": 2}
    assert cal.live() == {past, next_year, invited}
    if cal.provider == "google":
        told = {(n["event_id"], n["to"]) for n in sandbox.state("google")["calendar_notifications"]
                if n["what"] == "cancellation"}
        assert told == {(first, BOB), (first, CY), (later, CY)}
    else:
        cancellations = sandbox.state("microsoft")["cancellations"]
        assert {c["event_id"]: c["comment"] for c in cancellations} == {first: "Ada has left the company.",
                                                                       later: "Ada has left the company."}

    again = cancel_organized(cal.provider)  # a retry or a second offboarding run
    assert again == {"cancelled": [], "already_cancelled": [], "count": 0}
    assert cal.live() == {past, next_year, invited} and len(cal.cancel_requests()) == 2


def test_explicit_window_with_naive_bounds_in_the_time_zone(cal):
    # 2026-12-01 00:30 in Berlin is 2026-11-30 23:30 UTC: inside a Berlin-local December window.
    inside = cal.meeting(ADA, at("2026-12-01T00:30"))
    before = cal.meeting(ADA, at("2026-11-30T23:30"))
    under_way = cal.meeting(ADA, at("2026-11-30T23:45"), minutes=60)  # started before the window opened
    at_end = cal.meeting(ADA, at("2026-12-08T00:00"))  # the end is exclusive
    result = cancel_organized(cal.provider, start="2026-12-01T00:00:00", end="2026-12-08T00:00:00",
                              time_zone=BERLIN)
    assert result["cancelled"] == [inside]
    assert cal.live() == {before, under_way, at_end}


def test_pages_through_a_long_calendar(cal, sandbox, monkeypatch):
    hook = GoogleCalendarHook if cal.provider == "google" else MicrosoftGraphCalendarHook
    monkeypatch.setattr(hook, "page_size", 2)
    organized = [cal.meeting(ADA, _soon(day), (BOB,)) for day in (1, 2, 4, 5, 7)]
    invited = cal.meeting(BOB, _soon(3), (ADA,))
    result = cancel_organized(cal.provider)
    assert result["cancelled"] == organized and result["count"] == 5
    assert cal.live() == {invited}
    marker = "/calendars/primary/events" if cal.provider == "google" else "/calendarView"
    listings = [r for r in sandbox.requests(cal.provider) if r["method"] == "GET" and r["path"].endswith(marker)]
    assert len(listings) == 3 and all(r["status"] == 200 for r in listings)  # 6 events, 2 a page


def test_a_lost_cancellation_answer_counts_as_already_cancelled(cal, sandbox):
    meeting = cal.meeting(ADA, _soon(1), (BOB,))
    if cal.provider == "google":
        sandbox.fault("google", method="DELETE", path=f"/events/{meeting}", status=500, after=True)
    else:
        sandbox.fault("microsoft", method="POST", path=f"/events/{meeting}/cancel", status=500, after=True)
    result = cancel_organized(cal.provider)
    assert result == {"cancelled": [], "already_cancelled": [meeting], "count": 0}
    assert cal.live() == set()
    assert [r["status"] for r in cal.cancel_requests()][:1] == [500]


def test_unknown_organizer_is_nothing_to_cancel_only_when_missing_ok(cal, sandbox):
    invited = cal.meeting(BOB, _soon(1), (ADA,))
    gone = "gone@officeflow.test"
    assert cancel_organized(cal.provider, organizer=gone) == {"cancelled": [], "already_cancelled": [], "count": 0}
    with pytest.raises(AirflowFailException, match=f"{gone} has no calendar"):
        cancel_organized(cal.provider, organizer=gone, missing_ok=False)
    assert cal.live() == {invited} and cal.cancel_requests() == []


def test_missing_ok_does_not_hide_other_failures(cal, sandbox):
    meeting = cal.meeting(ADA, _soon(1))
    path = "/calendars/primary/events" if cal.provider == "google" else "/calendarView"
    sandbox.fault(cal.provider, method="GET", path=path, status=403)
    with pytest.raises(AirflowFailException, match=r"meetings ada@officeflow\.test organizes failed: .*(403|denied)"):
        cancel_organized(cal.provider)
    assert cal.live() == {meeting} and cal.cancel_requests() == []


def test_cancel_organized_validates_before_any_call(cal, sandbox):
    before = len(sandbox.requests(cal.provider))
    for bad in ({"start": "2026-12-08T00:00:00", "end": "2026-12-01T00:00:00"}, {"end": "next week"},
                {"time_zone": "Mars/Olympus"}, {"organizer": "not-an-address"}):
        with pytest.raises(AirflowFailException):
            cancel_organized(cal.provider, **bad)
    assert len(sandbox.requests(cal.provider)) == before
    assert {"start", "end", "organizer", "comment"} <= set(CancelOrganizedMeetingsOperator.template_fields)
