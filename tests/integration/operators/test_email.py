"""SendTemplatedEmailOperator against a real SMTP server (aiosmtpd) through providers-smtp."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import jinja2
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.officeflow.email_rendering import render_email
from operators.email import SendTemplatedEmailOperator
from sandbox.email.smtp_sink import SmtpSink
from tests.harness.mail import deliveries, task_context

WELCOME_VARS = {"first_name": "Ada", "department": "Engineering", "job_title": "Engineer",
                "start_date": "2026-12-01"}


@contextmanager
def fails_for_a_retry(cause: type[BaseException]) -> Iterator[None]:
    """The block fails the task for Airflow's retry (not for good), and ``cause`` is what failed
    (the provider hook's error, then the client's own, are the exception's causes)."""
    with pytest.raises(AirflowException) as info:
        yield
    assert not isinstance(info.value, AirflowFailException)
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    assert any(isinstance(e, cause) for e in chain), chain


@pytest.fixture
def smtp(tmp_path, monkeypatch, email_store):
    with SmtpSink(tmp_path / "mailbox") as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps({
            "conn_type": "smtp", "host": sink.host, "port": sink.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "people@example.com",
                      "timeout": 5, "retry_limit": 0},
        }))
        sink.store_url = email_store  # type: ignore[attr-defined]
        yield sink


def test_welcome_template_renders_subject_and_escaped_html():
    rendered = render_email("welcome", {**WELCOME_VARS, "first_name": "<Ada>"})
    assert rendered.subject == "Welcome to the team, <Ada>!"
    assert "&lt;Ada&gt;" in rendered.html and "<Ada>" not in rendered.html
    assert "the Engineering team as Engineer" in rendered.html


def test_missing_variable_is_an_error_before_sending():
    with pytest.raises(jinja2.UndefinedError, match="first_name"):
        render_email("welcome", {"department": "x", "job_title": "y", "start_date": ""})


def test_unknown_template_is_an_error():
    with pytest.raises(jinja2.TemplateNotFound):
        render_email("no_such_template", {})


def test_operator_sends_through_the_smtp_connection(smtp):
    op = SendTemplatedEmailOperator(task_id="welcome", template="welcome", to="ada@example.com",
                                    variables=WELCOME_VARS, smtp_conn_id="smtp_test")
    result = op.execute(context={})
    [message] = smtp.messages()
    assert message["To"] == "ada@example.com"
    assert message["From"] == "people@example.com"
    assert message["Subject"] == "Welcome to the team, Ada!"
    assert message["Message-ID"] == result["message_id"]
    assert message["X-OfficeFlow-Template"] == "welcome"
    html = message.get_body(("html",)).get_content()
    assert "Welcome aboard, Ada!" in html and "2026-12-01" in html
    assert result["to"] == ["ada@example.com"]


def test_operator_rejects_a_bad_recipient_without_sending(smtp):
    op = SendTemplatedEmailOperator(task_id="welcome", template="welcome", to="not-an-address",
                                    variables=WELCOME_VARS, smtp_conn_id="smtp_test")
    with pytest.raises(ValueError, match="email addresses"):
        op.execute(context={})
    assert smtp.messages() == []


def test_operator_fails_clearly_when_the_smtp_server_is_down(tmp_path, monkeypatch, email_store):
    from tests.harness.ports import free_port

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DOWN", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": free_port(),
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "p@example.com", "timeout": 2,
                  "retry_limit": 0},
    }))
    op = SendTemplatedEmailOperator(task_id="welcome", template="welcome", to="ada@example.com",
                                    variables=WELCOME_VARS, smtp_conn_id="smtp_down")
    with fails_for_a_retry(ConnectionRefusedError):
        op.execute(context={})


def test_template_fields_are_declared_for_jinja_rendering():
    assert set(SendTemplatedEmailOperator.template_fields) >= {"template", "to", "variables"}


# --- templates, branding, plain text --------------------------------------------------------------

TEMPLATE_VARS = {
    "welcome": WELCOME_VARS,
    "first_day_logistics": {"first_name": "Ada", "start_date": "2026-12-01", "arrival_time": "09:00",
                            "location": "HQ, 3rd floor", "contact_name": "Grace",
                            "bring": ["ID card"], "agenda": [{"time": "10:00", "title": "Team intro"}]},
    "manager_heads_up": {"manager_name": "Grace", "first_name": "Ada", "last_name": "Lovelace",
                         "start_date": "2026-12-01", "job_title": "Engineer", "department": "R&D",
                         "checklist_url": "https://officeflow.test/c/1"},
    "offboarding_notice": {"first_name": "Ada", "last_day": "2027-01-31", "personal_email": "",
                           "return_instructions": ""},
    "offboarding_manager_checklist": {"manager_name": "Grace", "first_name": "Ada", "last_name": "Lovelace",
                                      "last_day": "2027-01-31"},
    "approval_request": {"approver_name": "Grace", "requester_name": "Ada", "request_title": "Laptop upgrade",
                         "details": "", "approval_url": "https://officeflow.test/a/1", "due_date": "2026-12-03"},
    "approval_decision": {"requester_name": "Ada", "approver_name": "Grace", "request_title": "Laptop upgrade",
                          "decision": "approved", "comment": "Enjoy"},
}


@pytest.mark.parametrize("template", sorted(TEMPLATE_VARS))
def test_every_shipped_template_renders_html_and_text_and_needs_its_variables(template):
    variables = TEMPLATE_VARS[template]
    rendered = render_email(template, variables)
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert rendered.text.strip() and "<p>" not in rendered.text
    assert "Sent by People Operations via OfficeFlow." in rendered.html and rendered.text.rstrip().endswith(
        "Sent by People Operations via OfficeFlow.")
    first_required = next(iter(variables))
    with pytest.raises(jinja2.UndefinedError):
        render_email(template, {k: v for k, v in variables.items() if k != first_required})


def test_organization_branding_comes_from_brands_yaml():
    rendered = render_email("approval_request", TEMPLATE_VARS["approval_request"], organization="acme")
    assert "https://assets.acme.example/logo.png" in rendered.html and "#b91c1c" in rendered.html
    assert "The Acme People Team" in rendered.html and "Acme Corporation" in rendered.text
    default = render_email("approval_request", TEMPLATE_VARS["approval_request"], organization="unknown-org")
    assert "OfficeFlow" in default.text and "acme" not in default.html.lower()


def test_text_part_is_not_html_escaped_but_html_is():
    rendered = render_email("welcome", {**WELCOME_VARS, "department": "R&D"})
    assert "the R&D team" in rendered.text and "the R&amp;D team" in rendered.html


# --- SMTP: parts, attachments, idempotency, suppression -------------------------------------------

def smtp_op(**kwargs):
    kwargs.setdefault("template", "welcome")
    kwargs.setdefault("to", "ada@example.com")
    kwargs.setdefault("variables", WELCOME_VARS)
    kwargs.setdefault("task_id", "welcome")
    return SendTemplatedEmailOperator(conn_id="smtp_test", **kwargs)


def test_message_has_text_and_html_parts_and_attachments(smtp, tmp_path):
    import base64

    pdf = tmp_path / "offer.pdf"
    pdf.write_bytes(b"%PDF-1.4 offer")
    result = smtp_op(attachments=[
        {"path": str(pdf)},
        {"filename": "schedule.csv", "content_type": "text/csv",
         "content_base64": base64.b64encode(b"time,what\n09:00,intro\n").decode()},
    ]).execute(task_context())
    [message] = smtp.messages()
    assert message.get_body(("plain",)).get_content().startswith("OfficeFlow")
    assert "Welcome aboard, Ada!" in message.get_body(("plain",)).get_content()
    attachments = {a.get_filename(): a for a in message.iter_attachments()}
    assert set(attachments) == {"offer.pdf", "schedule.csv"}
    assert attachments["offer.pdf"].get_content_type() == "application/pdf"
    assert attachments["offer.pdf"].get_content() == b"%PDF-1.4 offer"
    assert attachments["schedule.csv"].get_content() == "time,what\n09:00,intro\n"
    [row] = deliveries(smtp.store_url)
    assert (row.status, row.provider, row.provider_message_id) == ("sent", "smtp", result["message_id"])
    assert (row.dag_id, row.task_id, row.template) == ("employee_onboarding", "send_email", "welcome")


def test_bad_attachment_fails_before_anything_is_claimed_or_sent(smtp):
    with pytest.raises(ValueError, match="base64"):
        smtp_op(attachments=[{"filename": "x.bin", "content_base64": "***"}]).execute(task_context())
    assert smtp.messages() == [] and deliveries(smtp.store_url) == []


def test_retry_of_the_same_task_does_not_send_again(smtp):
    context = task_context("scheduled__2026-12-01")
    first = smtp_op().execute(context)
    context["ti"].try_number = 2
    second = smtp_op().execute(context)
    assert len(smtp.messages()) == 1
    assert second["message_id"] == first["message_id"]
    assert second["deliveries"][0]["status"] == "sent"
    [row] = deliveries(smtp.store_url)
    assert row.attempts == 1
    # another run (or another map index) is another email
    smtp_op().execute(task_context("scheduled__2026-12-02"))
    smtp_op().execute(task_context("scheduled__2026-12-01", map_index=3))
    assert len(smtp.messages()) == 3


def test_a_try_that_died_mid_send_is_resent_with_the_same_message_id(smtp):
    from include.officeflow import email_tracking as tracking
    from include.officeflow.store import session_scope

    context = task_context("manual__crash")
    first = smtp_op().execute(context)
    [row] = deliveries(smtp.store_url)
    with session_scope(smtp.store_url) as session:  # as if the try died before recording the answer
        session.get(tracking.EmailDelivery, row.id).status = "sending"
    second = smtp_op().execute(context)
    messages = smtp.messages()
    assert len(messages) == 2 and messages[0]["Message-ID"] == messages[1]["Message-ID"] == first["message_id"]
    assert second["message_id"] == first["message_id"]
    [row] = deliveries(smtp.store_url)
    assert (row.status, row.attempts) == ("sent", 2)


def test_several_recipients_get_one_message_and_one_delivery_each(smtp):
    result = smtp_op(to=["ada@example.com", "grace@example.com", "ADA@example.com"]).execute(task_context())
    assert sorted(m["To"] for m in smtp.messages()) == ["ada@example.com", "grace@example.com"]
    assert len({d["message_id"] for d in result["deliveries"]}) == 2
    assert sorted(r.recipient for r in deliveries(smtp.store_url)) == ["ada@example.com", "grace@example.com"]


def test_suppressed_recipient_is_skipped_with_a_log_line(smtp, capsys):
    from include.officeflow import email_tracking as tracking

    tracking.suppress(smtp.store_url, "Bounced@Example.com", reason="bounce", source="ses")
    result = smtp_op(to=["bounced@example.com", "ada@example.com"]).execute(task_context())
    assert [m["To"] for m in smtp.messages()] == ["ada@example.com"]
    # Airflow's task logger (structlog) writes to stdout here
    assert "Skipping bounced@example.com: the address is on the suppression list" in capsys.readouterr().out
    statuses = {d["recipient"]: d["status"] for d in result["deliveries"]}
    assert statuses == {"bounced@example.com": "suppressed", "ada@example.com": "sent"}
    rows = {r.recipient: r for r in deliveries(smtp.store_url)}
    assert rows["bounced@example.com"].status == "suppressed" and rows["bounced@example.com"].attempts == 0
    assert "bounce" in rows["bounced@example.com"].status_detail


def test_failed_send_is_recorded_and_the_retry_sends(tmp_path, monkeypatch, email_store):
    from tests.harness.ports import free_port

    port = free_port()
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "p@example.com", "timeout": 2,
                      "retry_limit": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_LATER", json.dumps(conn))
    context = task_context("manual__later")
    op = SendTemplatedEmailOperator(task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS,
                                    conn_id="smtp_later")
    with fails_for_a_retry(ConnectionRefusedError):
        op.execute(context)
    [row] = deliveries(email_store)
    assert row.status == "failed" and "ConnectionRefusedError" in row.status_detail
    with SmtpSink(tmp_path / "mb", port=port) as sink:
        op.execute(context)
        assert [m["To"] for m in sink.messages()] == ["ada@example.com"]
    [row] = deliveries(email_store)
    assert (row.status, row.attempts) == ("sent", 2)


# --- SES and SendGrid (sandbox) --------------------------------------------------------------------

def test_ses_connection_sends_through_sesv2_with_attachments(sandbox, email_store):
    result = SendTemplatedEmailOperator(
        task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS, conn_id="officeflow_ses",
        attachments=[{"filename": "offer.pdf", "content_base64": "JVBERi0xLjQ="}]).execute(task_context())
    [message] = sandbox.state("ses")["messages"]
    assert message["MessageId"] == result["message_id"]
    assert message["from"] == "people@officeflow.test" and message["to"] == ["ada@example.com"]
    assert "Welcome aboard, Ada!" in message["text"] and "Welcome aboard, Ada!" in message["html"]
    assert message["attachments"][0]["filename"] == "offer.pdf" and message["attachments"][0]["size"] == 8
    [row] = deliveries(email_store)
    assert (row.provider, row.status, row.provider_message_id) == ("ses", "sent", result["message_id"])
    assert message["tags"] == {"officeflow_template": "welcome", "officeflow_delivery": row.id}


def test_ses_rejection_fails_the_task_without_retry(sandbox, email_store):
    op = SendTemplatedEmailOperator(task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS,
                                    conn_id="officeflow_ses", from_email="ceo@unverified.example")
    with pytest.raises(AirflowFailException, match="MessageRejected"):
        op.execute(task_context())
    [row] = deliveries(email_store)
    assert row.status == "failed" and "MessageRejected" in row.status_detail


def test_ses_throttling_is_retryable_and_the_retry_sends_once(sandbox, email_store):
    from botocore.exceptions import ClientError

    sandbox.fault("ses", path="/v2/email/outbound-emails", status=429, count=10)
    context = task_context()
    op = SendTemplatedEmailOperator(task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS,
                                    conn_id="officeflow_ses")
    with fails_for_a_retry(ClientError):
        op.execute(context)
    sandbox.client.delete("/_sandbox/faults", params={"service": "ses"})
    op.execute(context)
    op.execute(context)
    assert len(sandbox.state("ses")["messages"]) == 1


def test_sendgrid_connection_sends_with_custom_args_and_attachments(sandbox, email_store):
    result = SendTemplatedEmailOperator(
        task_id="w", template="manager_heads_up", to="grace@example.com",
        variables=TEMPLATE_VARS["manager_heads_up"], conn_id="officeflow_sendgrid", organization="acme",
        attachments=[{"filename": "plan.txt", "content_base64": "cGxhbg=="}]).execute(task_context())
    [message] = sandbox.state("sendgrid")["messages"]
    assert message["message_id"] == result["message_id"]
    assert message["from"] == {"email": "people@acme.example"}  # the organization's sender
    assert [c["type"] for c in message["content"]] == ["text/plain", "text/html"]
    assert message["subject"] == "Ada Lovelace joins your team on 2026-12-01"
    [row] = deliveries(email_store)
    assert message["custom_args"] == {"officeflow_delivery_id": row.id, "officeflow_template": "manager_heads_up"}
    assert (row.provider, row.organization_id, row.status) == ("sendgrid", "acme", "sent")
    assert message["attachments"][0]["filename"] == "plan.txt"


def test_sendgrid_bad_api_key_fails_the_task_permanently(sandbox, email_store, monkeypatch):
    conn = {**sandbox.connections["officeflow_sendgrid"], "password": "SG.revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_REVOKED", json.dumps(conn))
    with pytest.raises(AirflowFailException, match="SendGrid 401"):
        SendTemplatedEmailOperator(task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS,
                                   conn_id="sendgrid_revoked").execute(task_context())
    assert sandbox.state("sendgrid")["messages"] == []


def test_unknown_connection_type_is_a_clear_error(monkeypatch, email_store):
    monkeypatch.setenv("AIRFLOW_CONN_EMAIL_FTP", json.dumps({"conn_type": "ftp", "host": "x"}))
    with pytest.raises(ValueError, match="email needs smtp, aws"):
        SendTemplatedEmailOperator(task_id="w", template="welcome", to="a@example.com", variables=WELCOME_VARS,
                                   conn_id="email_ftp").execute(task_context())


def test_a_stored_document_is_attached_by_id_and_checked(smtp, tmp_path):
    from include.officeflow import documents

    storage = documents.LocalStorage(tmp_path / "documents")
    key = f"hires/attach-{uuid.uuid4().hex[:8]}/welcome_pack"
    first = documents.store_document(b"%PDF-1.4 v1", logical_key=key, title="Welcome pack", owner="hr",
                                     store_url=smtp.store_url, storage=storage)
    documents.store_document(b"%PDF-1.4 v2", logical_key=key, title="Welcome pack", owner="hr",
                             store_url=smtp.store_url, storage=storage)
    smtp_op(attachments=[{"document_id": first.document_id, "version": first.version}]).execute(task_context())
    [message] = smtp.messages()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "welcome_pack.pdf" and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 v1"  # the version asked for, not the current one

    # Bytes changed behind the store's back, or an unknown document: the task fails and sends nothing.
    latest = tmp_path / "documents" / "default" / key
    for path in latest.parent.rglob("*"):
        if path.is_file():
            path.write_bytes(b"tampered")
    with pytest.raises(documents.DocumentError, match="checksum"):
        smtp_op(task_id="again", attachments=[{"document_id": first.document_id}]).execute(task_context())
    with pytest.raises(LookupError, match="not found"):
        smtp_op(task_id="missing", attachments=[{"document_id": "no-such-document"}]).execute(task_context())
    assert len(smtp.messages()) == 1


# --- domain events (docs/events.md) -----------------------------------------------------------------

EMAIL_EVENT_KEYS = {"delivery_id", "template", "provider", "status", "message_id", "dag_id", "run_id", "task_id",
                    "attempts"}


def run_context(run_id: str, **conf: str) -> dict:
    from types import SimpleNamespace

    return {**task_context(run_id), "dag_run": SimpleNamespace(run_id=run_id, conf=conf)}


def test_a_send_writes_one_email_sent_event_with_ids_only_and_a_retry_none(smtp):
    from tests.harness.outbox import assert_no_personal_data, events

    context = run_context("manual__events", organization_id="acme", correlation_id="trace-mail-1")
    result = smtp_op(organization="acme").execute(context)
    [delivery] = result["deliveries"]
    [event] = events(smtp.store_url, "email")
    assert event["type"] == "com.officeflow.email.sent" and event["subject"] == delivery["delivery_id"]
    assert (event["organizationid"], event["correlationid"]) == ("acme", "trace-mail-1")
    assert set(event["data"]) == EMAIL_EVENT_KEYS
    assert event["data"] | {"message_id": None} == {
        "delivery_id": delivery["delivery_id"], "template": "welcome", "provider": "smtp", "status": "sent",
        "message_id": None, "dag_id": "employee_onboarding", "run_id": "manual__events", "task_id": "send_email",
        "attempts": 1}
    # The SMTP Message-ID (<id@domain>) looks like an address: the event carries its digest.
    assert event["data"]["message_id"].startswith("sha256:") and "@" not in event["data"]["message_id"]
    assert_no_personal_data(event, "ada@example.com", "Welcome to the team")

    context["ti"].try_number = 2
    smtp_op(organization="acme").execute(context)  # the retry finds the send: nothing changes, no event
    assert len(events(smtp.store_url, "email")) == 1


def test_a_failed_send_writes_no_event_and_its_retry_writes_one(tmp_path, monkeypatch, email_store):
    from tests.harness.outbox import events
    from tests.harness.ports import free_port

    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_LATER", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "p@example.com", "timeout": 2,
                  "retry_limit": 0}}))
    context = run_context("manual__later-events")
    op = SendTemplatedEmailOperator(task_id="w", template="welcome", to="ada@example.com", variables=WELCOME_VARS,
                                    conn_id="smtp_later")
    with fails_for_a_retry(ConnectionRefusedError):
        op.execute(context)
    assert events(email_store) == []
    with SmtpSink(tmp_path / "mb", port=port):
        op.execute(context)
    [event] = events(email_store)
    assert event["type"] == "com.officeflow.email.sent" and event["data"]["attempts"] == 2
    assert "correlationid" not in event and event["organizationid"] == "default"


def test_the_sent_event_is_recorded_with_the_send_or_not_at_all(smtp):
    from include.officeflow import email_tracking as tracking
    from tests.harness.outbox import events, outbox_refusing

    with outbox_refusing(smtp.store_url, "email"), pytest.raises(Exception, match="test_refuse_email"):
        smtp_op().execute(task_context("manual__refused"))
    [row] = deliveries(smtp.store_url)  # the claim committed before the send; recording the send rolled back
    assert (row.status, row.sent_at) == ("sending", None) and events(smtp.store_url) == []
    assert tracking.claim(smtp.store_url, key=row.idempotency_key, recipient="ada@example.com", template="welcome",
                          subject="s", provider="smtp").resumed  # the retry sends again (same Message-ID)
