"""The Slack emulation (sandbox/slack/) over real HTTP with slack_sdk's WebClient, configured
from the provisioned connection the way providers-slack's SlackHook configures it."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.slack.web_api import BOT_USER_ID


def client(sandbox, token: str | None = None) -> WebClient:
    conn = sandbox.connections["officeflow_slack"]
    return WebClient(token=token or conn["password"], base_url=conn["extra"]["base_url"], retry_handlers=[])


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response.status_code, info.value.response.data


def add_user(sandbox, email: str, real_name: str = "Ada Lovelace", **extra) -> dict:
    response = sandbox.client.post("/slack/_sandbox/users", json={"email": email, "real_name": real_name, **extra})
    response.raise_for_status()
    return response.json()


def test_connection_is_the_providers_slack_shape(sandbox):
    conn = sandbox.connections["officeflow_slack"]
    assert conn["conn_type"] == "slack" and conn["password"].startswith("xoxb-")
    assert conn["extra"]["base_url"] == f"{sandbox.url}/slack/api/"


def test_auth(sandbox):
    assert client(sandbox).auth_test()["user_id"] == BOT_USER_ID
    status, body = error_of(lambda: client(sandbox, "xoxb-wrong").auth_test())
    assert status == 200 and body == {"ok": False, "error": "invalid_auth"}
    raw = httpx.post(f"{sandbox.url}/slack/api/auth.test")
    assert raw.status_code == 200 and raw.json() == {"ok": False, "error": "not_authed"}
    raw = httpx.post(f"{sandbox.url}/slack/api/no.such.method")
    assert raw.json()["error"] == "unknown_method"


def test_post_message_to_channel_by_id_or_name_and_thread(sandbox):
    web = client(sandbox)
    posted = web.chat_postMessage(channel="#general", text="hello", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}])
    assert posted["channel"] == "C0GENERAL0" and posted["message"]["text"] == "hello"
    reply = web.chat_postMessage(channel=posted["channel"], text="in thread", thread_ts=posted["ts"])
    assert float(reply["ts"]) > float(posted["ts"])
    history = web.conversations_history(channel="C0GENERAL0")["messages"]
    assert [m["text"] for m in history] == ["hello"] and history[0]["reply_count"] == 1
    replies = web.conversations_replies(channel="C0GENERAL0", ts=posted["ts"])["messages"]
    assert [m["text"] for m in replies] == ["hello", "in thread"]
    stored = sandbox.state("slack")["messages"]["C0GENERAL0"]
    assert stored[0]["blocks"][0]["text"]["text"] == "*hello*" and stored[1]["thread_ts"] == posted["ts"]


@pytest.mark.parametrize("kwargs, error", [
    ({"channel": "C0NOPE0000", "text": "x"}, "channel_not_found"),
    ({"channel": "#general"}, "no_text"),
    ({"channel": "#general", "text": "x", "blocks": [{"type": "nonsense"}]}, "invalid_blocks"),
    ({"channel": "#general", "text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
     "invalid_blocks"),
    ({"channel": "#general", "text": "x" * 40_001}, "msg_too_long"),
])
def test_post_message_errors(sandbox, kwargs, error):
    status, body = error_of(lambda: client(sandbox).chat_postMessage(**kwargs))
    assert status == 200 and body["ok"] is False and body["error"] == error
    if error == "invalid_blocks":
        assert body["response_metadata"]["messages"]


def test_dm_via_lookup_by_email_and_open(sandbox):
    web = client(sandbox)
    ada = add_user(sandbox, "ada@officeflow.test")
    user = web.users_lookupByEmail(email="ADA@officeflow.test")["user"]
    assert user["id"] == ada["id"] and user["profile"]["email"] == "ada@officeflow.test"
    opened = web.conversations_open(users=[user["id"]])
    again = web.conversations_open(users=[user["id"]])
    assert opened["channel"]["id"] == again["channel"]["id"] and again["already_open"] is True
    posted = web.chat_postMessage(channel=user["id"], text="hi Ada")  # a user id posts to the DM
    assert posted["channel"] == opened["channel"]["id"]
    assert error_of(lambda: web.users_lookupByEmail(email="nobody@officeflow.test"))[1]["error"] == "users_not_found"


def test_channel_lifecycle(sandbox):
    web = client(sandbox)
    ada = add_user(sandbox, "ada@officeflow.test")
    gone = add_user(sandbox, "gone@officeflow.test", deleted=True)
    created = web.conversations_create(name="onboarding-ada", is_private=False)["channel"]
    assert created["id"].startswith("C") and created["is_member"] is True
    assert error_of(lambda: web.conversations_create(name="onboarding-ada"))[1]["error"] == "name_taken"
    for name, error in [("Has Caps", "invalid_name_specials"), ("x" * 81, "invalid_name_maxlength"),
                        ("", "invalid_name_required")]:
        assert error_of(lambda n=name: web.conversations_create(name=n))[1]["error"] == error
    web.conversations_invite(channel=created["id"], users=[ada["id"]])
    assert error_of(lambda: web.conversations_invite(channel=created["id"], users=[ada["id"]]))[1]["error"] == \
        "already_in_channel"
    assert error_of(lambda: web.conversations_invite(channel=created["id"], users=[gone["id"]]))[1]["error"] == \
        "cant_invite"
    assert error_of(lambda: web.conversations_invite(channel=created["id"], users=["U999"]))[1]["error"] == \
        "user_not_found"
    web.conversations_setTopic(channel=created["id"], topic="Ada's first weeks")
    info = web.conversations_info(channel=created["id"])["channel"]
    assert info["topic"]["value"] == "Ada's first weeks" and info["num_members"] == 2
    assert "onboarding-ada" in [c["name"] for c in web.conversations_list(types="public_channel")["channels"]]
    web.conversations_archive(channel=created["id"])
    assert error_of(lambda: web.conversations_archive(channel=created["id"]))[1]["error"] == "already_archived"
    assert error_of(lambda: web.chat_postMessage(channel=created["id"], text="x"))[1]["error"] == "is_archived"
    assert error_of(lambda: web.conversations_create(name="onboarding-ada"))[1]["error"] == "name_taken"
    assert error_of(lambda: web.conversations_archive(channel="C0GENERAL0"))[1]["error"] == "cant_archive_general"
    state = sandbox.state("slack")["channels"][created["id"]]
    assert state["is_archived"] is True and state["members"] == [BOT_USER_ID, ada["id"]]


def test_kick_removes_a_member_as_slack_documents_it(sandbox):
    web = client(sandbox)
    ada = add_user(sandbox, "ada@officeflow.test")
    channel = web.conversations_create(name="team-platform")["channel"]["id"]
    web.conversations_invite(channel=channel, users=[ada["id"]])
    kicked = web.conversations_kick(channel=channel, user=ada["id"])
    assert kicked.status_code == 200 and kicked.data == {"ok": True}
    assert sandbox.state("slack")["channels"][channel]["members"] == [BOT_USER_ID]
    # Not a member (a second kick, too) is an error, not a success: the caller decides it is done.
    assert error_of(lambda: web.conversations_kick(channel=channel, user=ada["id"])) == (
        200, {"ok": False, "error": "not_in_channel"})
    web.conversations_invite(channel="#team-platform", users=[ada["id"]])
    web.conversations_kick(channel=channel, user=ada["id"])  # by id after an invite by name: the same channel
    assert sandbox.state("slack")["channels"][channel]["members"] == [BOT_USER_ID]


def test_kick_refusals(sandbox):
    web = client(sandbox)
    ada = add_user(sandbox, "ada@officeflow.test")
    channel = web.conversations_create(name="team-platform")["channel"]["id"]
    web.conversations_invite(channel=channel, users=[ada["id"]])
    dm = web.conversations_open(users=[ada["id"]])["channel"]["id"]
    for kwargs, error in [
        ({"channel": "C0NOPE0000", "user": ada["id"]}, "channel_not_found"),
        ({"channel": channel, "user": "U0NOBODY00"}, "user_not_found"),
        ({"channel": channel, "user": BOT_USER_ID}, "cant_kick_self"),
        ({"channel": "C0GENERAL0", "user": ada["id"]}, "cant_kick_from_general"),
        ({"channel": dm, "user": ada["id"]}, "method_not_supported_for_channel_type"),
    ]:
        assert error_of(lambda k=kwargs: web.conversations_kick(**k)) == (200, {"ok": False, "error": error}), kwargs
    missing_user = error_of(lambda: web.api_call("conversations.kick", params={"channel": channel}))
    assert missing_user == (200, {"ok": False, "error": "user_not_found"})
    assert error_of(lambda: client(sandbox, "xoxb-wrong").conversations_kick(channel=channel, user=ada["id"]))[1] == {
        "ok": False, "error": "invalid_auth"}
    assert ada["id"] in sandbox.state("slack")["channels"][channel]["members"]  # no refusal removed anyone


def test_kick_restricted_by_the_workspace_preference(sandbox):
    web = client(sandbox)
    ada = add_user(sandbox, "ada@officeflow.test")
    public = web.conversations_create(name="team-platform")["channel"]["id"]
    private = web.conversations_create(name="team-secret", is_private=True)["channel"]["id"]
    for channel in (public, private):
        web.conversations_invite(channel=channel, users=[ada["id"]])
    prefs = sandbox.client.post("/slack/_sandbox/team_prefs", json={"who_can_kick_channels": "admin"})
    assert prefs.json() == {"who_can_kick_channels": "admin", "who_can_kick_groups": "regular"}
    assert error_of(lambda: web.conversations_kick(channel=public, user=ada["id"]))[1]["error"] == "restricted_action"
    web.conversations_kick(channel=private, user=ada["id"])  # private channels have their own preference
    assert sandbox.client.post("/slack/_sandbox/team_prefs", json={"who_can_kick_channels": "anyone"}).status_code \
        == 400
    sandbox.reset("slack")
    assert sandbox.state("slack")["team"]["prefs"]["who_can_kick_channels"] == "regular"


def test_injected_429_has_retry_after_and_slacks_body(sandbox):
    sandbox.fault("slack", status=429, retry_after=7, path="/api/chat.postMessage")
    raw = httpx.post(f"{sandbox.url}/slack/api/chat.postMessage",
                     headers={"Authorization": f"Bearer {sandbox.connections['officeflow_slack']['password']}"},
                     content=json.dumps({"channel": "#general", "text": "x"}))
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "7"
    assert raw.json() == {"ok": False, "error": "ratelimited"}


def test_per_method_rate_limit(sandbox):
    web = client(sandbox)
    if 60 - time.time() % 60 < 5:  # all 21 calls in the same one-minute window
        time.sleep(60 - time.time() % 60 + 0.1)
    for _ in range(20):  # conversations.list is tier 2: 20 a minute
        web.conversations_list()
    with pytest.raises(SlackApiError) as info:
        web.conversations_list()
    response = info.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert 1 <= int(headers["retry-after"]) <= 60
    assert web.auth_test()["ok"]  # other methods have their own budget
