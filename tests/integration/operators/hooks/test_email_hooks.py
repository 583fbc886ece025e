"""The email provider hooks (operators/hooks/email): each provider's failures mapped onto
include/officeflow/errors.py, through the real clients against the sandbox's SES v2 and SendGrid and
against real SMTP servers (aiosmtpd)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from include.officeflow.errors import AuthError, InvalidInput, RateLimited, Unavailable
from operators.hooks.email import OutgoingEmail, sender_for
from operators.hooks.email.sendgrid import SendGridHook
from operators.hooks.email.ses import SesEmailHook
from operators.hooks.email.smtp import OfficeFlowSmtpHook


def message(recipient: str = "ada@example.com", sender: str = "people@officeflow.test") -> OutgoingEmail:
    return OutgoingEmail(sender=sender, recipient=recipient, subject="Welcome", html="<p>Hi</p>", text="Hi\n",
                         delivery_id="d-1", template="welcome")


def set_connection(monkeypatch, conn_id: str, conn: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def test_the_connection_type_picks_the_hook(sandbox, monkeypatch):
    assert isinstance(sender_for("officeflow_ses"), SesEmailHook)
    assert isinstance(sender_for("officeflow_sendgrid"), SendGridHook)
    set_connection(monkeypatch, "smtp_x", {"conn_type": "smtp", "host": "127.0.0.1"})
    hook = sender_for("smtp_x")
    assert isinstance(hook, OfficeFlowSmtpHook) and hook.stable_message_id
    assert sender_for("officeflow_ses").default_sender() == "people@officeflow.test"


# --- SES v2 ----------------------------------------------------------------------------------------

def ses(sandbox, monkeypatch, **changes) -> SesEmailHook:
    """The sandbox's SES connection, botocore retrying nothing (the mapping is what is tested)."""
    conn = sandbox.connections["officeflow_ses"]
    extra = {**conn["extra"], "config_kwargs": {"retries": {"total_max_attempts": 1}}, **changes.pop("extra", {})}
    return SesEmailHook(aws_conn_id=set_connection(monkeypatch, "ses_test", {**conn, **changes, "extra": extra}))


def test_ses_refusals_are_permanent(sandbox, monkeypatch):
    with pytest.raises(AuthError, match=r"SES InvalidSignatureException.*check the connection 'ses_test'") as info:
        ses(sandbox, monkeypatch, password="not-the-secret").send(message())
    assert "not-the-secret" not in str(info.value)
    with pytest.raises(InvalidInput, match="SES MessageRejected"):
        ses(sandbox, monkeypatch).send(message(sender="ceo@unverified.example"))
    assert sandbox.state("ses")["messages"] == []


def test_ses_throttling_and_server_errors_are_retryable(sandbox, monkeypatch):
    sandbox.fault("ses", path="/v2/email/outbound-emails", status=429, count=1)
    with pytest.raises(RateLimited, match="TooManyRequestsException"):
        ses(sandbox, monkeypatch).send(message())
    sandbox.fault("ses", path="/v2/email/outbound-emails", status=503, count=1)
    with pytest.raises(Unavailable, match="SES ServiceUnavailable"):
        ses(sandbox, monkeypatch).send(message())
    assert ses(sandbox, monkeypatch).send(message())  # then it goes through


def test_an_unreachable_ses_endpoint_is_unavailable(sandbox, monkeypatch):
    from tests.harness.ports import free_port

    hook = ses(sandbox, monkeypatch, extra={"endpoint_url": f"http://127.0.0.1:{free_port()}/ses"})
    with pytest.raises(Unavailable, match="EndpointConnectionError"):
        hook.send(message())


# --- SendGrid ----------------------------------------------------------------------------------------

def sendgrid(sandbox, monkeypatch, **changes) -> SendGridHook:
    conn = {**sandbox.connections["officeflow_sendgrid"], **changes}
    return SendGridHook(sendgrid_conn_id=set_connection(monkeypatch, "sendgrid_test", conn))


def test_sendgrid_refusals_are_permanent(sandbox, monkeypatch):
    with pytest.raises(AuthError, match=r"SendGrid 401: .*check the connection 'sendgrid_test'"):
        sendgrid(sandbox, monkeypatch, password="SG.revoked").send(message())
    with pytest.raises(InvalidInput, match="SendGrid 400"):
        sendgrid(sandbox, monkeypatch).send(message(recipient="not-an-address"))
    with pytest.raises(AuthError, match="needs the SendGrid API key"):
        sendgrid(sandbox, monkeypatch, password=None).default_sender()
    assert sandbox.state("sendgrid")["messages"] == []


def test_sendgrid_throttling_and_server_errors_are_retryable(sandbox, monkeypatch):
    sandbox.fault("sendgrid", path="/v3/mail/send", status=429, retry_after=7, count=1)
    with pytest.raises(RateLimited, match="too many requests") as info:
        sendgrid(sandbox, monkeypatch).send(message())
    assert info.value.retry_after == 7
    sandbox.fault("sendgrid", path="/v3/mail/send", status=500, count=1)
    with pytest.raises(Unavailable, match="SendGrid 500"):
        sendgrid(sandbox, monkeypatch).send(message())
    assert sendgrid(sandbox, monkeypatch).send(message())


def test_an_unreachable_sendgrid_is_unavailable(sandbox, monkeypatch):
    from tests.harness.ports import free_port

    with pytest.raises(Unavailable, match="SendGrid URLError"):
        sendgrid(sandbox, monkeypatch, host=f"http://127.0.0.1:{free_port()}").send(message())


# --- SMTP ----------------------------------------------------------------------------------------------

class Refusing:
    """An aiosmtpd handler answering every recipient with one SMTP reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        return self.reply


@pytest.fixture
def smtp_server(monkeypatch) -> Iterator:
    """Start an aiosmtpd server with a handler (and optional authenticator); yields the hook's connection id."""
    from aiosmtpd.controller import Controller

    from tests.harness.ports import free_port

    controllers = []

    def start(handler, *, login: str | None = None, password: str | None = None, **server_kwargs) -> str:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **server_kwargs)
        controller.start()
        controllers.append(controller)
        conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "login": login,
                "password": password, "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5,
                                                "retry_limit": 0}}
        return set_connection(monkeypatch, f"smtp_{len(controllers)}", conn)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.mark.parametrize(("reply", "error"), [("550 5.1.1 No such mailbox", InvalidInput),
                                              ("451 4.3.0 Try again later", Unavailable)])
def test_smtp_refused_recipients_by_reply_code(smtp_server, reply, error):
    hook = OfficeFlowSmtpHook(smtp_conn_id=smtp_server(Refusing(reply)))
    try:
        with pytest.raises(error, match=reply.split()[0]):
            hook.send(message())
    finally:
        hook.close()


def test_smtp_bad_credentials_are_an_auth_error(smtp_server):
    from aiosmtpd.smtp import AuthResult

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        return AuthResult(success=False, handled=False)

    conn_id = smtp_server(Refusing("250 OK"), login="people", password="wrong", authenticator=authenticator,
                          auth_require_tls=False)
    hook = OfficeFlowSmtpHook(smtp_conn_id=conn_id)
    with pytest.raises(AuthError, match=f"SMTPAuthenticationError.*check the connection '{conn_id}'"):
        hook.send(message())


def test_an_unreachable_smtp_server_is_unavailable(monkeypatch):
    from tests.harness.ports import free_port

    conn_id = set_connection(monkeypatch, "smtp_nowhere", {
        "conn_type": "smtp", "host": "127.0.0.1", "port": free_port(),
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 2, "retry_limit": 0}})
    with pytest.raises(Unavailable, match="ConnectionRefusedError"):
        OfficeFlowSmtpHook(smtp_conn_id=conn_id).send(message())
