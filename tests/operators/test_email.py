"""SendTemplatedEmailOperator against a real SMTP server (aiosmtpd) through providers-smtp."""

from __future__ import annotations

import json

import jinja2
import pytest

from include.sandbox.smtp_sink import SmtpSink
from operators.email import SendTemplatedEmailOperator, render_email

WELCOME_VARS = {"first_name": "Ada", "department": "Engineering", "job_title": "Engineer",
                "start_date": "2026-12-01"}


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    with SmtpSink(tmp_path / "mailbox") as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps({
            "conn_type": "smtp", "host": sink.host, "port": sink.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "people@example.com",
                      "timeout": 5, "retry_limit": 0},
        }))
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


def test_operator_fails_clearly_when_the_smtp_server_is_down(tmp_path, monkeypatch):
    from tests.harness.ports import free_port

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DOWN", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": free_port(),
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "p@example.com", "timeout": 2,
                  "retry_limit": 0},
    }))
    op = SendTemplatedEmailOperator(task_id="welcome", template="welcome", to="ada@example.com",
                                    variables=WELCOME_VARS, smtp_conn_id="smtp_down")
    with pytest.raises(ConnectionRefusedError):
        op.execute(context={})


def test_template_fields_are_declared_for_jinja_rendering():
    assert set(SendTemplatedEmailOperator.template_fields) >= {"template", "to", "variables"}
