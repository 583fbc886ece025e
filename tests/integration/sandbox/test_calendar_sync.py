"""The sandbox's calendar push side over raw HTTP, as the vendors document it: Google watch channels
(``events.watch``, push headers, message numbers, ``channels.stop``, syncToken lists, an attendee's own
response) and Graph subscriptions (validation handshake on create and renew, clientState in each
notification, the 4230-minute limit, expiry). A small HTTP receiver in this module stands for the
subscriber; the gateway's side is tests/integration/plugins/test_calendar_notifications.py."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.harness.sandbox_clients import PASSWORD, google_client, google_user, request_token

ADMIN, BOB = "admin@officeflow.test", "bob@officeflow.test"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what it is sent; echoes Graph's validationToken unless
    ``refuse_validation``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refuse_validation = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = parse_qs(urlsplit(self.path).query)
                if "validationToken" in query:
                    token = query["validationToken"][0].encode()
                    self.send_response(400 if owner.refuse_validation else 200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(token)))
                    self.end_headers()
                    self.wfile.write(token)
                    return
                owner.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received
        return self.received

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def event(**overrides: Any) -> dict[str, Any]:
    return {"summary": "Welcome 1:1", "start": {"dateTime": "2027-01-04T10:00:00Z"},
            "end": {"dateTime": "2027-01-04T10:30:00Z"}, "attendees": [{"email": BOB}], **overrides}


# --- Google ----------------------------------------------------------------------------------------------

def test_google_watch_pushes_sync_then_one_numbered_message_per_change(sandbox, receiver):
    google_user(sandbox, BOB)
    with google_client(sandbox, ADMIN) as cal:
        first = cal.get("/calendars/primary/events").json()
        assert first["items"] == [] and first["nextSyncToken"]
        channel = cal.post("/calendars/primary/events/watch", json={
            "id": "officeflow-test-1", "type": "web_hook", "address": receiver.url, "token": "s3cret-token"})
        assert channel.status_code == 200, channel.text
        answer = channel.json()
        assert answer["kind"] == "api#channel" and answer["resourceId"] and int(answer["expiration"]) > 0
        sync = receiver.wait(1)[0]["headers"]
        assert sync["X-Goog-Resource-State"] == "sync" and sync["X-Goog-Message-Number"] == "1"
        assert sync["X-Goog-Channel-ID"] == "officeflow-test-1" and sync["X-Goog-Channel-Token"] == "s3cret-token"
        assert sync["X-Goog-Resource-ID"] == answer["resourceId"] and "GMT" in sync["X-Goog-Channel-Expiration"]
        created = cal.post("/calendars/primary/events", json=event()).json()
        change = receiver.wait(2)[1]["headers"]
        assert change["X-Goog-Resource-State"] == "exists" and change["X-Goog-Message-Number"] == "2"
        assert receiver.received[1]["body"] == b""
        changed = cal.get("/calendars/primary/events", params={"syncToken": first["nextSyncToken"]}).json()
        assert [e["id"] for e in changed["items"]] == [created["id"]]
        nothing = cal.get("/calendars/primary/events", params={"syncToken": changed["nextSyncToken"]}).json()
        assert nothing["items"] == []
    with google_client(sandbox, BOB) as bob:  # the attendee declines through their own calendar
        declined = bob.patch(f"/calendars/primary/events/{created['id']}",
                             json={"attendees": [{"email": BOB, "responseStatus": "declined"}]})
        assert declined.status_code == 200, declined.text
        assert bob.patch(f"/calendars/primary/events/{created['id']}", json={"summary": "mine now"}).status_code == 403
    assert receiver.wait(3)[2]["headers"]["X-Goog-Message-Number"] == "3"
    with google_client(sandbox, ADMIN) as cal:
        after = cal.get("/calendars/primary/events", params={"syncToken": changed["nextSyncToken"]}).json()
        [seen] = after["items"]
        assert next(a for a in seen["attendees"] if a["email"] == BOB)["responseStatus"] == "declined"
        stale = cal.get("/calendars/primary/events", params={"syncToken": "bm90LWEtdG9rZW4="})
        assert stale.status_code == 410 and stale.json()["error"]["errors"][0]["reason"] == "fullSyncRequired"
        assert cal.get("/calendars/primary/events", params={"syncToken": changed["nextSyncToken"],
                                                            "timeMin": "2027-01-01T00:00:00Z"}).status_code == 400
        stop = cal.post("/channels/stop", json={"id": "officeflow-test-1", "resourceId": answer["resourceId"]})
        assert stop.status_code == 204
        cal.delete(f"/calendars/primary/events/{created['id']}")
        assert cal.post("/channels/stop", json={"id": "officeflow-test-1",
                                                "resourceId": answer["resourceId"]}).status_code == 404
    time.sleep(0.5)
    assert len(receiver.received) == 3  # a stopped channel sends nothing
    deliveries = sandbox.state("google")["push_deliveries"]
    assert [d["status"] for d in deliveries] == [202, 202, 202]


def test_google_watch_refuses_bad_channels_and_expired_ones_stay_silent(sandbox, receiver):
    with google_client(sandbox, ADMIN) as cal:
        bad = [{"id": "has space", "type": "web_hook", "address": receiver.url},
               {"id": "ok-id", "type": "email", "address": receiver.url},
               {"id": "ok-id", "type": "web_hook", "address": "http://example.com/hook"},
               {"id": "ok-id", "type": "web_hook", "address": receiver.url,
                "expiration": int(time.time() * 1000) - 1000}]
        for body in bad:
            assert cal.post("/calendars/primary/events/watch", json=body).status_code == 400, body
        soon = int((time.time() + 1.5) * 1000)
        assert cal.post("/calendars/primary/events/watch", json={
            "id": "short-lived", "type": "web_hook", "address": receiver.url, "expiration": soon}).status_code == 200
        assert cal.post("/calendars/primary/events/watch", json={
            "id": "short-lived", "type": "web_hook", "address": receiver.url}).status_code == 400  # not unique
        receiver.wait(1)
        time.sleep(1.6)
        cal.post("/calendars/primary/events", json=event(attendees=[]))
    time.sleep(0.5)
    assert len(receiver.received) == 1  # only the sync message: the channel had expired


# --- Microsoft ---------------------------------------------------------------------------------------------

@pytest.fixture
def graph(sandbox):
    token = request_token(sandbox).json()["access_token"]
    with httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0", timeout=20,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for name in ("ada", "bob"):
            created = client.post("/users", json={
                "accountEnabled": True, "displayName": name, "mailNickname": name,
                "userPrincipalName": f"{name}@officeflow.test", "passwordProfile": {"password": PASSWORD}})
            assert created.status_code == 201, created.text
        yield client


def expiry(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def subscription(url: str, **overrides: Any) -> dict[str, Any]:
    return {"changeType": "created,updated,deleted", "notificationUrl": url,
            "resource": "users/ada@officeflow.test/events", "expirationDateTime": expiry(60),
            "clientState": "client-state-1", **overrides}


def test_graph_subscription_handshake_limits_and_notifications(sandbox, graph, receiver):
    receiver.refuse_validation = True
    refused = graph.post("/subscriptions", json=subscription(receiver.url))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ValidationError"
    receiver.refuse_validation = False
    too_long = graph.post("/subscriptions", json=subscription(receiver.url, expirationDateTime=expiry(4231)))
    assert too_long.status_code == 400 and "4230 minutes" in too_long.json()["error"]["message"]
    assert graph.post("/subscriptions", json=subscription("http://example.com/x")).status_code == 400
    assert graph.post("/subscriptions", json=subscription(receiver.url, resource="groups")).status_code == 400
    created = graph.post("/subscriptions", json=subscription(receiver.url))
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["clientState"] == "client-state-1" and sub["resource"] == "users/ada@officeflow.test/events"

    meeting = graph.post("/users/ada@officeflow.test/events", json={
        "subject": "IT setup", "start": {"dateTime": "2027-01-04T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-01-04T10:45:00", "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "bob@officeflow.test"}}]}).json()
    [note] = json.loads(receiver.wait(1)[0]["body"])["value"]
    assert note["changeType"] == "created" and note["clientState"] == "client-state-1"
    assert note["subscriptionId"] == sub["id"] and note["resourceData"]["id"] == meeting["id"]
    assert note["resource"].endswith(f"/Events/{meeting['id']}") and note["tenantId"]

    assert graph.post(f"/users/ada@officeflow.test/events/{meeting['id']}/decline",
                      json={"comment": "on leave"}).status_code == 404  # the organizer is no attendee
    declined = graph.post(f"/users/bob@officeflow.test/events/{meeting['id']}/decline", json={"comment": "sorry"})
    assert declined.status_code == 202
    [update] = json.loads(receiver.wait(2)[1]["body"])["value"]
    assert update["changeType"] == "updated"
    again = graph.get(f"/users/ada@officeflow.test/events/{meeting['id']}").json()
    assert again["attendees"][0]["status"]["response"] == "declined"

    renewed = graph.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": expiry(120)})
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
    assert graph.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": expiry(5000)}).status_code == 400
    assert [s["id"] for s in graph.get("/subscriptions").json()["value"]] == [sub["id"]]
    assert graph.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert graph.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_graph_expired_subscription_is_gone_and_silent(sandbox, graph, receiver):
    created = graph.post("/subscriptions", json=subscription(receiver.url, expirationDateTime=expiry(0.03)))
    assert created.status_code == 201, created.text
    time.sleep(2.2)
    sub_id = created.json()["id"]
    assert graph.get(f"/subscriptions/{sub_id}").status_code == 404
    renew = graph.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": expiry(60)})
    assert renew.status_code == 404 and renew.json()["error"]["code"] == "ResourceNotFound"
    graph.post("/users/ada@officeflow.test/events", json={
        "subject": "x", "start": {"dateTime": "2027-01-04T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-01-04T10:30:00", "timeZone": "UTC"}})
    time.sleep(0.5)
    assert receiver.received == []
