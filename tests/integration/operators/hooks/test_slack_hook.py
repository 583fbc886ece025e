"""OfficeFlowSlackHook: Slack's failures mapped onto include/officeflow/errors.py, and the cached
lookups, through slack_sdk's WebClient against the sandbox's Slack emulation over real HTTP."""

from __future__ import annotations

import json

import pytest

from include.officeflow.errors import AuthError, Conflict, InvalidInput, NotFound, RateLimited, Unavailable
from operators.hooks.slack import OfficeFlowSlackHook

ADA = "ada.lovelace@officeflow.test"


def slack_calls(sandbox, method: str) -> list[dict]:
    return [r for r in sandbox.requests("slack") if r["path"] == f"/api/{method}"]


def test_bad_token_is_an_auth_error_naming_the_connection_not_the_token(sandbox, monkeypatch):
    conn = {**sandbox.connections["officeflow_slack"], "password": "xoxb-not-the-token"}
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_SLACK", json.dumps(conn))
    with pytest.raises(AuthError, match=r"Slack auth\.test failed: invalid_auth \(check the connection "
                                        r"'officeflow_slack'\)") as info:
        OfficeFlowSlackHook().call_method("auth.test")
    assert not info.value.retryable and "xoxb-not-the-token" not in str(info.value)


def test_a_missing_connection_is_an_auth_error(sandbox):
    with pytest.raises(AuthError, match="'slack_nowhere' is not defined"):
        OfficeFlowSlackHook(slack_conn_id="slack_nowhere").call_method("auth.test")


def test_a_long_rate_limit_is_rate_limited_with_its_retry_after(sandbox):
    sandbox.fault("slack", status=429, retry_after=3600, path="/api/chat.postMessage", count=1)
    with pytest.raises(RateLimited, match="ratelimited") as info:
        OfficeFlowSlackHook().call_method("chat.postMessage", channel="#general", text="hi")
    assert info.value.retryable and info.value.retry_after == 3600
    assert [r["status"] for r in slack_calls(sandbox, "chat.postMessage")] == [429]  # not waited in the client


@pytest.mark.parametrize(("status", "code"), [(500, "internal_error"), (503, "service_unavailable")])
def test_server_errors_are_unavailable(sandbox, status, code):
    sandbox.fault("slack", status=status, path="/api/chat.postMessage", count=1)
    with pytest.raises(Unavailable, match=rf"chat\.postMessage failed: {code}") as info:
        OfficeFlowSlackHook().call_method("chat.postMessage", channel="#general", text="hi")
    assert info.value.retryable


def test_an_unreachable_slack_is_unavailable(sandbox, monkeypatch):
    from tests.harness.ports import free_port

    conn = sandbox.connections["officeflow_slack"]
    conn = {**conn, "extra": {**conn["extra"], "base_url": f"http://127.0.0.1:{free_port()}/slack/api/"}}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DOWN", json.dumps(conn))
    with pytest.raises(Unavailable, match=r"auth\.test failed"):
        OfficeFlowSlackHook(slack_conn_id="slack_down").call_method("auth.test")


def test_unknown_user_and_channel_are_not_found(sandbox):
    hook = OfficeFlowSlackHook()
    with pytest.raises(NotFound, match=r"no Slack user has the e-mail address 'nobody@officeflow\.test'"):
        hook.user_id_by_email("nobody@officeflow.test")
    with pytest.raises(NotFound, match=r"chat\.postMessage failed: channel_not_found") as info:
        hook.call_method("chat.postMessage", channel="C0NOPE0000", text="hi")
    assert not info.value.retryable


def test_refused_input_is_invalid_and_expected_codes_come_back_as_data(sandbox):
    hook = OfficeFlowSlackHook()
    with pytest.raises(InvalidInput, match="invalid_name_specials"):
        hook.call_method("conversations.create", name="Onboarding Ada")
    with pytest.raises(InvalidInput, match="not a valid e-mail address"):
        hook.user_id_by_email("Ada Lovelace")
    hook.call_method("conversations.create", name="onboarding-ada")
    with pytest.raises(Conflict, match="name_taken"):
        hook.call_method("conversations.create", name="onboarding-ada")
    answer = hook.call_method("conversations.create", name="onboarding-ada", allow={"name_taken"})
    assert answer["ok"] is False and answer["error"] == "name_taken"


def test_lookups_are_cached_per_hook(sandbox):
    sandbox.client.post("/slack/_sandbox/users", json={"email": ADA, "real_name": "Ada"}).raise_for_status()
    hook = OfficeFlowSlackHook()
    user_id = hook.user_id_by_email(ADA)
    assert hook.user_id_by_email(ADA.upper()) == user_id
    assert len(slack_calls(sandbox, "users.lookupByEmail")) == 1
    assert OfficeFlowSlackHook().user_id_by_email(ADA) == user_id  # another hook asks again
    assert len(slack_calls(sandbox, "users.lookupByEmail")) == 2


def test_channel_lookup_pages_until_found_and_caches_what_it_saw(sandbox):
    hook = OfficeFlowSlackHook()
    created = [hook.call_method("conversations.create", name=f"team-{i}")["channel"]["id"] for i in range(3)]
    hook.channels_page_size = 2  # #general, #officeflow-alerts, then team-0 … team-2
    assert (hook.channel_by_name("#team-2") or {}).get("id") == created[2]
    assert len(slack_calls(sandbox, "conversations.list")) == 3
    assert (hook.channel_by_name("team-0") or {}).get("id") == created[0]
    assert hook.get_channel_id("team-1") == created[1]  # SlackHook's own lookup shares the cache
    assert hook.channel_by_name("nowhere") is None
    assert len(slack_calls(sandbox, "conversations.list")) == 3 + 3  # a missing name pages through again
