"""Slack operators and the workflow notifier: providers-slack's SlackHook / SlackNotifier (slack_sdk's
WebClient) against the sandbox's Slack emulation over real HTTP. Outcomes are asserted on the sandbox's
state and request log."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from operators.slack import (
    ArchiveChannelOperator,
    CreateChannelOperator,
    OfficeFlowSlackNotifier,
    RemoveFromChannelOperator,
    SlackMessageOperator,
)
from operators.slack.channels import onboarding_channel_name

ADA = "ada.lovelace@officeflow.test"
MANAGER = "people.manager@officeflow.test"  # seeded
INTRO = {"first_name": "Ada", "last_name": "Lovelace", "start_date": "2026-03-02", "job_title": "Engineer",
         "department": "R&D", "manager_name": "Grace <Hopper>"}


def add_user(sandbox, email: str = ADA, real_name: str = "Ada Lovelace", **extra) -> dict:
    response = sandbox.client.post("/slack/_sandbox/users", json={"email": email, "real_name": real_name, **extra})
    response.raise_for_status()
    return response.json()


def calls(sandbox, method: str) -> list[dict]:
    return [r for r in sandbox.requests("slack") if r["path"] == f"/api/{method}"]


def messages(sandbox, channel: str) -> list[dict]:
    return sandbox.state("slack")["messages"][channel]


def channel_named(sandbox, name: str) -> dict:
    [channel] = [c for c in sandbox.state("slack")["channels"].values() if c.get("name") == name]
    return channel


# --- messages -------------------------------------------------------------------------------------

def test_template_message_to_a_channel(sandbox):
    result = SlackMessageOperator(task_id="post", template="welcome_channel_intro", variables=INTRO,
                                  channel="#general").execute(context={})
    assert result["channel"] == "C0GENERAL0"
    [message] = messages(sandbox, "C0GENERAL0")
    assert message["ts"] == result["ts"]
    assert message["text"] == "Welcome Ada Lovelace, starting 2026-03-02 as Engineer"
    assert message["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Welcome, Ada!"}}
    # user-supplied values are escaped for mrkdwn (and for JSON): no broken markup, no injected links
    assert "*R&amp;D*" in message["blocks"][1]["text"]["text"]
    assert message["blocks"][2]["fields"][0]["text"] == "*Manager*\nGrace &lt;Hopper&gt;"


def test_dm_to_a_person_found_by_email_then_a_thread_reply(sandbox):
    ada = add_user(sandbox)
    dm = SlackMessageOperator(task_id="dm", template="hire_dm", user_email=ADA, variables={
        "first_name": "Ada", "start_date": "2026-03-02", "channel_name": "onboarding-ada-lovelace",
        "manager_name": "Grace"}).execute(context={})
    state = sandbox.state("slack")
    assert state["channels"][dm["channel"]]["is_im"] and state["channels"][dm["channel"]]["user"] == ada["id"]
    reply = SlackMessageOperator(task_id="reply", text="Your laptop has shipped", channel=dm["channel"],
                                 thread_ts=dm["ts"]).execute(context={})
    assert reply["thread_ts"] == dm["ts"]
    parent, child = messages(sandbox, dm["channel"])
    assert parent["ts"] == dm["ts"] and parent["reply_count"] == 1
    assert child["thread_ts"] == dm["ts"] and child["text"] == "Your laptop has shipped"
    assert [r["path"] for r in sandbox.requests("slack") if r["path"].startswith("/api/")] == [
        "/api/users.lookupByEmail", "/api/conversations.open", "/api/chat.postMessage", "/api/chat.postMessage"]


def test_missing_template_variable_fails_before_any_call(sandbox):
    with pytest.raises(AirflowFailException, match="'manager_name' is undefined"):
        SlackMessageOperator(task_id="post", template="welcome_channel_intro",
                             variables={k: v for k, v in INTRO.items() if k != "manager_name"},
                             channel="#general").execute(context={})
    assert sandbox.requests("slack") == []


def test_unknown_person_fails_clearly(sandbox):
    with pytest.raises(AirflowFailException, match="no Slack user has the e-mail address"):
        SlackMessageOperator(task_id="dm", text="hi", user_email="nobody@officeflow.test").execute(context={})


def test_unknown_channel_is_a_permanent_failure(sandbox):
    with pytest.raises(AirflowFailException, match=r"chat\.postMessage failed: channel_not_found"):
        SlackMessageOperator(task_id="post", text="hi", channel="C0NOPE0000").execute(context={})
    assert [r["status"] for r in calls(sandbox, "chat.postMessage")] == [200]  # not retried


def test_bad_token_fails_with_a_pointer_to_the_connection(sandbox, monkeypatch):
    conn = {**sandbox.connections["officeflow_slack"], "password": "xoxb-not-the-token"}
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_SLACK", json.dumps(conn))
    with pytest.raises(AirflowFailException, match="invalid_auth \\(check the connection 'officeflow_slack'\\)") \
            as info:
        SlackMessageOperator(task_id="post", text="hi", channel="#general").execute(context={})
    assert "xoxb-not-the-token" not in str(info.value)
    assert messages(sandbox, "C0GENERAL0") == []


def test_rate_limit_retry_after_is_honoured(sandbox):
    sandbox.fault("slack", status=429, retry_after=1, path="/api/chat.postMessage", count=1)
    result = SlackMessageOperator(task_id="post", text="hi", channel="#general").execute(context={})
    posts = calls(sandbox, "chat.postMessage")
    assert [r["status"] for r in posts] == [429, 200]
    assert posts[1]["at"] - posts[0]["at"] >= 1.0  # waited Retry-After (slack_sdk adds < 1 s of jitter)
    assert [m["ts"] for m in messages(sandbox, "C0GENERAL0")] == [result["ts"]]  # posted once


def test_a_long_retry_after_goes_back_to_airflow_instead_of_blocking(sandbox):
    sandbox.fault("slack", status=429, retry_after=3600, path="/api/chat.postMessage", count=1)
    started = time.monotonic()
    with pytest.raises(AirflowException, match="ratelimited") as info:
        SlackMessageOperator(task_id="post", text="hi", channel="#general").execute(context={})
    assert not isinstance(info.value, AirflowFailException)  # Airflow retries it later
    assert time.monotonic() - started < 5
    assert [r["status"] for r in calls(sandbox, "chat.postMessage")] == [429]


# --- once per task: retries and lost answers --------------------------------------------------------

def task_context(*, try_number: int = 1, run_id: str = "manual__2026-12-03", map_index: int = -1) -> dict:
    """The parts of a task's Context the poster reads: its task instance and its run's start."""
    started = SimpleNamespace(timestamp=lambda: time.time() - 60)
    ti = SimpleNamespace(dag_id="employee_onboarding", run_id=run_id, task_id="post", map_index=map_index,
                         try_number=try_number, start_date=started)
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=started)}


def post(context: dict, **kwargs) -> dict:
    fields = {"text": "Welcome Ada", "channel": "#general", **kwargs}
    return SlackMessageOperator(task_id="post", **fields).execute(context=context)


def test_a_post_whose_answer_was_lost_is_found_instead_of_posted_twice(sandbox):
    sandbox.fault("slack", status=503, path="/api/chat.postMessage", after=True)  # posted, then the answer is lost
    result = post(task_context())
    [message] = messages(sandbox, "C0GENERAL0")
    assert result == {"channel": "C0GENERAL0", "ts": message["ts"], "thread_ts": None}
    assert message["metadata"]["event_type"] == "officeflow_post"
    assert [r["status"] for r in calls(sandbox, "chat.postMessage")] == [503]  # never sent again
    assert [r["status"] for r in calls(sandbox, "conversations.history")] == [200]


def test_a_retry_finds_the_earlier_tries_post(sandbox):
    first = post(task_context())
    again = post(task_context(try_number=2))
    assert again == first and len(messages(sandbox, "C0GENERAL0")) == 1
    assert len(calls(sandbox, "chat.postMessage")) == 1
    other_run = post(task_context(try_number=2, run_id="manual__2026-12-04"))
    other_index = post(task_context(try_number=2, map_index=1))
    assert len({first["ts"], other_run["ts"], other_index["ts"]}) == 3
    assert len(messages(sandbox, "C0GENERAL0")) == 3


def test_a_retried_thread_reply_is_posted_once(sandbox):
    parent = post({}, text="Onboarding Ada")
    reply = post(task_context(), text="Laptop shipped", thread_ts=parent["ts"])
    assert post(task_context(try_number=3), text="Laptop shipped", thread_ts=parent["ts"]) == reply
    assert [m["ts"] for m in messages(sandbox, "C0GENERAL0")] == [parent["ts"], reply["ts"]]
    assert [r["status"] for r in calls(sandbox, "conversations.replies")] == [200]


def test_a_post_that_never_arrived_fails_retryably_and_the_retry_posts_it(sandbox):
    sandbox.fault("slack", status=503, path="/api/chat.postMessage")  # refused before anything was posted
    with pytest.raises(AirflowException) as info:
        post(task_context())
    assert not isinstance(info.value, AirflowFailException)
    assert messages(sandbox, "C0GENERAL0") == []
    result = post(task_context(try_number=2))
    assert [m["ts"] for m in messages(sandbox, "C0GENERAL0")] == [result["ts"]]


def test_without_include_all_metadata_history_lists_no_metadata(sandbox):
    post(task_context())
    from slack_sdk import WebClient

    conn = sandbox.connections["officeflow_slack"]
    web = WebClient(token=conn["password"], base_url=conn["extra"]["base_url"])
    [plain] = web.conversations_history(channel="C0GENERAL0")["messages"]
    [full] = web.conversations_history(channel="C0GENERAL0", include_all_metadata=True)["messages"]
    assert "metadata" not in plain and full["metadata"]["event_type"] == "officeflow_post"
    assert web.conversations_history(channel="C0GENERAL0", oldest=full["ts"])["messages"] == []
    assert len(web.conversations_history(channel="C0GENERAL0", oldest=full["ts"], inclusive=True)["messages"]) == 1


# --- channels -------------------------------------------------------------------------------------

def create(**kwargs) -> dict:
    kwargs.setdefault("name", onboarding_channel_name("Ada", "Lovelace"))
    return CreateChannelOperator(task_id="channel", **kwargs).execute(context={})


def test_create_channel_invites_and_sets_topic_and_is_idempotent(sandbox):
    ada = add_user(sandbox)
    first = create(invite_emails=[ADA, MANAGER], topic="Ada's onboarding")
    assert first["name"] == "onboarding-ada-lovelace" and first["created"] is True
    assert first["invited"] == [ADA, MANAGER] and first["already_members"] == []
    channel = channel_named(sandbox, "onboarding-ada-lovelace")
    assert channel["id"] == first["channel_id"] and channel["topic"]["value"] == "Ada's onboarding"
    assert set(channel["members"]) == {"U0BOT00001", ada["id"], "U0SEED0002"}

    again = create(invite_emails=[ADA, MANAGER], topic="Ada's onboarding")
    assert again["channel_id"] == first["channel_id"] and again["created"] is False
    assert again["invited"] == [] and again["already_members"] == [ADA, MANAGER]
    assert channel_named(sandbox, "onboarding-ada-lovelace")["members"] == channel["members"]
    assert [r["status"] for r in calls(sandbox, "conversations.create")] == [200, 200]  # 2nd: name_taken
    assert len(calls(sandbox, "conversations.setTopic")) == 1  # unchanged topic is not set again


def test_create_refuses_an_archived_channel_and_bad_names(sandbox):
    created = create()
    ArchiveChannelOperator(task_id="archive", channel=created["channel_id"]).execute(context={})
    with pytest.raises(AirflowFailException, match="exists but is archived"):
        create()
    with pytest.raises(AirflowFailException, match="invalid Slack channel name"):
        create(name="Onboarding Ada")
    assert len(calls(sandbox, "conversations.create")) == 2


def test_inviting_an_unknown_person_fails(sandbox):
    with pytest.raises(AirflowFailException, match=r"nobody@officeflow\.test"):
        create(invite_emails=["nobody@officeflow.test"])


def test_archive_is_idempotent_by_id_or_name(sandbox):
    created = create()
    first = ArchiveChannelOperator(task_id="archive", channel="#onboarding-ada-lovelace").execute(context={})
    assert first == {"channel_id": created["channel_id"], "archived": True, "already_archived": False}
    again = ArchiveChannelOperator(task_id="archive", channel=created["channel_id"]).execute(context={})
    assert again["already_archived"] is True
    assert sandbox.state("slack")["channels"][created["channel_id"]]["is_archived"] is True
    missing = ArchiveChannelOperator(task_id="archive", channel="onboarding-nobody").execute(context={})
    assert missing["archived"] is False
    with pytest.raises(AirflowFailException, match="not found"):
        ArchiveChannelOperator(task_id="archive", channel="onboarding-nobody", missing_ok=False).execute(context={})


def remove(channel: str = "#team-platform", emails: tuple[str, ...] = (ADA,), **kwargs) -> dict:
    return RemoveFromChannelOperator(task_id="leave", channel=channel, emails=list(emails), **kwargs).execute(
        context={})


def test_remove_from_channel_is_idempotent_by_name_or_id(sandbox):
    ada = add_user(sandbox)
    created = create(name="team-platform", invite_emails=[ADA, MANAGER])
    first = remove(emails=(ADA,))
    assert first == {"channel_id": created["channel_id"], "removed": [ADA], "not_members": [],
                     "no_slack_account": []}
    assert ada["id"] not in channel_named(sandbox, "team-platform")["members"]
    assert "U0SEED0002" in channel_named(sandbox, "team-platform")["members"]  # the others stay
    again = remove(channel=created["channel_id"], emails=(ADA, MANAGER))  # a retry, and one more person
    assert (again["removed"], again["not_members"]) == ([MANAGER], [ADA])
    assert channel_named(sandbox, "team-platform")["members"] == ["U0BOT00001"]
    assert [r["status"] for r in calls(sandbox, "conversations.kick")] == [200, 200, 200]  # 2nd: not_in_channel


def test_remove_with_nothing_to_remove_succeeds(sandbox):
    add_user(sandbox)
    create(name="team-platform", invite_emails=[ADA])
    nobody = remove(emails=("nobody@officeflow.test", ADA))  # no Slack account: nothing to remove
    assert (nobody["no_slack_account"], nobody["removed"]) == (["nobody@officeflow.test"], [ADA])
    gone = remove(channel="#team-gone")
    assert gone == {"channel_id": None, "removed": [], "not_members": [], "no_slack_account": []}
    assert len(calls(sandbox, "conversations.kick")) == 1
    with pytest.raises(AirflowFailException, match="not found"):
        remove(channel="#team-gone", missing_ok=False)


def test_remove_fails_for_good_when_slack_refuses(sandbox):
    ada = add_user(sandbox)
    create(name="team-platform", invite_emails=[ADA])
    sandbox.client.post("/slack/_sandbox/team_prefs", json={"who_can_kick_channels": "admin"}).raise_for_status()
    with pytest.raises(AirflowFailException, match=r"conversations\.kick failed: restricted_action"):
        remove()
    with pytest.raises(AirflowFailException, match=r"conversations\.kick failed: cant_kick_from_general"):
        remove(channel="#general")
    with pytest.raises(AirflowFailException, match="invalid Slack channel"):
        remove(channel="#Team Platform")
    with pytest.raises(AirflowFailException, match="not a valid e-mail address"):
        remove(emails=("ada",))
    assert ada["id"] in channel_named(sandbox, "team-platform")["members"]


def test_remove_retries_later_when_slack_is_down(sandbox):
    add_user(sandbox)
    create(name="team-platform", invite_emails=[ADA])
    sandbox.fault("slack", status=503, path="/api/conversations.kick")
    with pytest.raises(AirflowException) as info:
        remove()
    assert not isinstance(info.value, AirflowFailException)  # Airflow retries it
    assert remove()["removed"] == [ADA]


# --- notifier -------------------------------------------------------------------------------------

def failure_context(run_id: str = "manual__2026-03-01T09:00:00+00:00") -> dict:
    from airflow.sdk import DAG

    dag = DAG("onboarding_new_hire", schedule=None)
    ti = SimpleNamespace(dag_id=dag.dag_id, run_id=run_id, task_id="provision_google", map_index=-1, try_number=2,
                         state="failed")
    return {"dag": dag, "dag_run": SimpleNamespace(dag_id=dag.dag_id, run_id=run_id), "ti": ti,
            "task_instance": ti, "run_id": run_id,
            "exception": AirflowFailException("Google users.insert failed: 403 {{ not a template }}")}


def test_failure_notifier_names_workflow_run_task_and_links_to_the_ui(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.officeflow.test/")
    notifier = OfficeFlowSlackNotifier(status="failed")
    notifier(failure_context())
    [message] = messages(sandbox, "C0ALERTS00")
    url = ("https://airflow.officeflow.test/dags/onboarding_new_hire/runs/"
           "manual__2026-03-01T09%3A00%3A00%2B00%3A00/tasks/provision_google?try_number=2")
    assert message["text"] == (f"OfficeFlow workflow onboarding_new_hire failed at task provision_google "
                               f"(run manual__2026-03-01T09:00:00+00:00): {url}")
    assert message["username"] == "OfficeFlow"
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == ":x: Workflow onboarding_new_hire failed"
    assert blocks[1]["fields"][2]["text"] == "*Task*\nprovision_google (try 2)"
    assert "AirflowFailException: Google users.insert failed: 403 {{ not a template }}" in blocks[2]["text"]["text"]
    assert blocks[3]["elements"][0]["url"] == url

    notifier(failure_context("scheduled__2026-03-02"))  # the same instance for another run
    assert "scheduled__2026-03-02" in messages(sandbox, "C0ALERTS00")[1]["text"]


def test_success_notifier_for_a_run(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.officeflow.test")
    context = failure_context()
    del context["ti"], context["task_instance"], context["exception"]
    OfficeFlowSlackNotifier(status="succeeded", channel="#general")(context)
    [message] = messages(sandbox, "C0GENERAL0")
    assert message["text"].startswith("OfficeFlow workflow onboarding_new_hire succeeded (run manual__")
    assert message["blocks"][-1]["elements"][0]["url"] == (
        "https://airflow.officeflow.test/dags/onboarding_new_hire/runs/manual__2026-03-01T09%3A00%3A00%2B00%3A00")


def test_notifier_honours_rate_limits(sandbox):
    sandbox.fault("slack", status=429, retry_after=1, path="/api/chat.postMessage", count=1)
    OfficeFlowSlackNotifier()(failure_context())
    assert [r["status"] for r in calls(sandbox, "chat.postMessage")] == [429, 200]
    assert len(messages(sandbox, "C0ALERTS00")) == 1


def test_missing_connection_fails_the_task(sandbox):
    with pytest.raises(AirflowFailException, match="'slack_nowhere' is not defined"):
        SlackMessageOperator(task_id="post", text="hi", channel="#general", conn_id="slack_nowhere").execute(context={})
