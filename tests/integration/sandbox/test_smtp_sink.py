"""The SMTP sink (sandbox/email/smtp_sink.py) through smtplib: messages kept as .eml, refusals injected on purpose."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from sandbox.email.smtp_sink import SmtpSink


def message(to: str, subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "people@officeflow.test", to, subject
    mail.set_content("hello")
    return mail


def test_refusals_are_answered_in_order_and_nothing_refused_is_kept(tmp_path):
    with SmtpSink(tmp_path / "mailbox") as sink, smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        sink.refuse("451 4.3.0 Try again later", "554 5.7.1 Message rejected")
        with pytest.raises(smtplib.SMTPDataError) as first:
            client.send_message(message("a@example.com", "one"))
        with pytest.raises(smtplib.SMTPDataError) as second:
            client.send_message(message("a@example.com", "one"))
        client.send_message(message("a@example.com", "one"))
        assert (first.value.smtp_code, second.value.smtp_code) == (451, 554)
        assert [m["Subject"] for m in sink.messages()] == ["one"] and sink.pending_refusals() == []


def test_a_refusal_for_one_recipient_leaves_the_others_alone(tmp_path):
    with SmtpSink(tmp_path / "mailbox") as sink, smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        sink.refuse("554 5.7.1 Message rejected", to="b@example.com")
        client.send_message(message("a@example.com", "for a"))
        assert sink.pending_refusals() == [("554 5.7.1 Message rejected", "b@example.com")]
        with pytest.raises(smtplib.SMTPDataError):
            client.send_message(message("b@example.com", "for b"))
        assert [m["To"] for m in sink.messages()] == ["a@example.com"] and sink.pending_refusals() == []


def test_pending_faults_of_the_sandbox_are_listed_until_met(sandbox_server):
    sandbox_server.fault("slack", method="POST", path="chat.postMessage", status=500)
    assert [(f["service"], f["path"]) for f in sandbox_server.pending_faults()] == [("slack", "chat.postMessage")]
    sandbox_server.reset("slack")
    assert sandbox_server.pending_faults() == []
