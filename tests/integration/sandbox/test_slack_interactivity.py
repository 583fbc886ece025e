"""The Slack emulation's interactivity (sandbox/slack/interactivity.py): views.open/publish/update and
users.info through slack_sdk's WebClient, and the sandbox's user sending signed commands, submissions and
events to an app: here a plain HTTP receiver that checks the signature with slack_sdk's SignatureVerifier."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from tests.harness.slack import SIGNING_SECRET, act

ADMIN = "U0SEED0001"  # admin@officeflow.test in the seed


def web(sandbox) -> WebClient:
    conn = sandbox.connections["officeflow_slack"]
    return WebClient(token=conn["password"], base_url=conn["extra"]["base_url"], retry_handlers=[])


def error_of(call) -> dict:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response.data


def trigger(sandbox, user: str = ADMIN) -> str:
    response = sandbox.client.post("/slack/_sandbox/trigger_ids", json={"user_id": user})
    response.raise_for_status()
    return response.json()["trigger_id"]


def modal(title: str = "Request equipment", **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "callback_id": "cb", "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [{"type": "input", "block_id": "items", "label": {"type": "plain_text", "text": "Items"},
                        "element": {"type": "multi_static_select", "action_id": "items", "options": [
                            {"text": {"type": "plain_text", "text": "laptop"}, "value": "laptop"},
                            {"text": {"type": "plain_text", "text": "monitor"}, "value": "monitor"}]}},
                       {"type": "input", "block_id": "reason", "optional": True,
                        "label": {"type": "plain_text", "text": "Why"},
                        "element": {"type": "plain_text_input", "action_id": "reason"}}], **extra}


def test_views_open_needs_a_fresh_trigger_used_once(sandbox):
    client = web(sandbox)
    trigger_id = trigger(sandbox)
    view = client.views_open(trigger_id=trigger_id, view=modal())["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "cb" and view["state"] == {"values": {}}
    assert sandbox.state("slack")["views"][view["id"]]["user_id"] == ADMIN
    assert error_of(lambda: client.views_open(trigger_id=trigger_id, view=modal()))["error"] == "exchanged_trigger_id"
    assert error_of(lambda: client.views_open(trigger_id="1.2.3", view=modal()))["error"] == "invalid_trigger_id"
    stale = trigger(sandbox)
    time.sleep(3.2)  # Slack's trigger ids open a view within 3 s
    assert error_of(lambda: client.views_open(trigger_id=stale, view=modal()))["error"] == "expired_trigger_id"


@pytest.mark.parametrize("view, pointer", [
    (modal("A title longer than 24 chars"), "/view/title/text"),
    ({**modal(), "type": "home"}, "/view/type"),
    ({k: v for k, v in modal().items() if k != "submit"}, "/view/submit"),
    ({**modal(), "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "x"},
                             "element": {"type": "static_select", "action_id": "a", "options": []}}]},
     "/view/blocks/0/element/options"),
    ({**modal(), "blocks": [{"type": "nonsense"}]}, "/view/blocks/0/type"),
    ({**modal(), "private_metadata": "x" * 3001}, "/view/private_metadata"),
])
def test_views_open_checks_the_view_as_slack_does(sandbox, view, pointer):
    body = error_of(lambda: web(sandbox).views_open(trigger_id=trigger(sandbox), view=view))
    assert body["error"] == "invalid_arguments"
    assert any(f"[json-pointer:{pointer}" in m for m in body["response_metadata"]["messages"]), body


def test_views_publish_and_update(sandbox):
    client = web(sandbox)
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    first = client.views_publish(user_id=ADMIN, view=home)["view"]
    second = client.views_publish(user_id=ADMIN, view={**home, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "again"}}]})["view"]
    assert first["id"] == second["id"] and sandbox.state("slack")["home"] == {ADMIN: first["id"]}
    assert error_of(lambda: client.views_publish(user_id="U0NOBODY", view=home))["error"] == "user_not_found"
    assert error_of(lambda: client.views_publish(user_id=ADMIN, view=modal()))["error"] == "invalid_arguments"

    opened = client.views_open(trigger_id=trigger(sandbox), view=modal(external_id="req-1"))["view"]
    updated = client.views_update(external_id="req-1", view=modal("Updated"), hash=opened["hash"])["view"]
    assert updated["id"] == opened["id"] and updated["title"]["text"] == "Updated"
    assert error_of(lambda: client.views_update(view_id=opened["id"], view=modal(), hash=opened["hash"]))["error"] \
        == "hash_conflict"
    assert error_of(lambda: client.views_update(view_id="V0NOPE", view=modal()))["error"] == "not_found"


def test_users_info(sandbox):
    client = web(sandbox)
    assert client.users_info(user=ADMIN)["user"]["profile"]["email"] == "admin@officeflow.test"
    assert error_of(lambda: client.users_info(user="U0NOBODY"))["error"] == "user_not_found"


class Receiver:
    """An app's Request URL: records each request (verified with slack_sdk) and answers ``answers[kind]``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, Any] = {}
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = SignatureVerifier(SIGNING_SECRET).is_valid(
                    body, self.headers["X-Slack-Request-Timestamp"], self.headers["X-Slack-Signature"])
                if self.headers["Content-Type"] == "application/json":
                    parsed = json.loads(body)
                else:
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    parsed = json.loads(form["payload"]) if "payload" in form else form
                receiver.requests.append({"path": self.path, "valid": valid, "body": parsed})
                time.sleep(receiver.delay)
                answer = receiver.answers.get(self.path.strip("/"))
                if callable(answer):
                    answer = answer(parsed)
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def app(sandbox) -> Iterator[Receiver]:
    receiver = Receiver()
    sandbox.client.post("/slack/_sandbox/app", json={
        "signing_secret": SIGNING_SECRET, "commands_url": f"{receiver.url}/commands",
        "interactivity_url": f"{receiver.url}/interactions", "events_url": f"{receiver.url}/events"}
    ).raise_for_status()
    yield receiver
    receiver.server.shutdown()


def test_a_signed_command_carries_a_trigger_that_opens_a_modal_and_a_response_url(sandbox, app):
    answer = act(sandbox, "command", user_id=ADMIN, text="request equipment")
    assert answer["status"] == 200 and "error" not in answer
    sent = app.requests[-1]
    assert sent["valid"] and sent["path"] == "/commands"
    assert sent["body"]["command"] == "/officeflow" and sent["body"]["text"] == "request equipment"
    assert sent["body"]["user_id"] == ADMIN and sent["body"]["team_id"] == "T0SANDBOX"
    web(sandbox).views_open(trigger_id=sent["body"]["trigger_id"], view=modal())
    import httpx
    httpx.post(sent["body"]["response_url"], json={"response_type": "ephemeral", "text": "later"}).raise_for_status()
    assert sandbox.state("slack")["command_responses"][answer["command_id"]] == [
        {"response_type": "ephemeral", "text": "later"}]


def test_view_submission_errors_keep_the_modal_open_and_clear_closes_it(sandbox, app):
    view = web(sandbox).views_open(trigger_id=trigger(sandbox), view=modal())["view"]
    app.answers["interactions"] = {"response_action": "errors", "errors": {"items": "Pick at least one item."}}
    answer = act(sandbox, "view_submission", user_id=ADMIN, view_id=view["id"], values={"reason": {"reason": "x"}})
    sent = app.requests[-1]["body"]
    assert app.requests[-1]["valid"] and sent["type"] == "view_submission"
    assert sent["view"]["state"]["values"] == {
        "items": {"items": {"type": "multi_static_select", "selected_options": []}},
        "reason": {"reason": {"type": "plain_text_input", "value": "x"}}}
    assert answer["view"]["open"] and answer["view"]["errors"] == {"items": "Pick at least one item."}

    app.answers["interactions"] = {"response_action": "clear"}
    act(sandbox, "view_submission", user_id=ADMIN, view_id=view["id"],
        values={"items": {"items": ["laptop", "monitor"]}})
    picked = app.requests[-1]["body"]["view"]["state"]["values"]["items"]["items"]["selected_options"]
    assert [o["value"] for o in picked] == ["laptop", "monitor"]
    assert sandbox.state("slack")["views"][view["id"]]["open"] is False


def test_block_action_on_a_home_view_and_app_home_opened(sandbox, app):
    home = web(sandbox).views_publish(user_id=ADMIN, view={"type": "home", "blocks": [
        {"type": "actions", "elements": [{"type": "button", "action_id": "go",
                                          "text": {"type": "plain_text", "text": "Go"}}]}]})["view"]
    act(sandbox, "block_action", user_id=ADMIN, view_id=home["id"], action_id="go")
    click = app.requests[-1]["body"]
    assert click["type"] == "block_actions" and click["actions"][0]["action_id"] == "go" and click["trigger_id"]
    assert click["container"] == {"type": "view", "view_id": home["id"]}

    act(sandbox, "app_home_opened", user_id=ADMIN)
    event = app.requests[-1]
    assert event["valid"] and event["path"] == "/events" and event["body"]["type"] == "event_callback"
    assert event["body"]["event"]["type"] == "app_home_opened" and event["body"]["event"]["user"] == ADMIN


def test_url_verification_wants_the_challenge_back(sandbox, app):
    assert act(sandbox, "url_verification")["verified"] is False  # the receiver answers nothing
    app.answers["events"] = lambda body: {"challenge": body["challenge"]}
    assert act(sandbox, "url_verification")["verified"] is True


def test_an_app_slower_than_3_seconds_times_out_as_in_slack(sandbox, app):
    app.delay = 3.5
    answer = act(sandbox, "command", user_id=ADMIN)
    assert answer["error"] == "operation_timeout" and answer["status"] is None


def test_acting_needs_a_configured_app(sandbox):
    response = sandbox.client.post("/slack/_sandbox/act/command", json={"user_id": ADMIN})
    assert response.status_code == 409
