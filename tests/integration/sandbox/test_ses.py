"""The SES v2 emulation (sandbox/email/ses.py) over real HTTP with boto3's sesv2 client (SigV4)."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def ses_client(sandbox, *, key_id: str | None = None, secret: str | None = None):
    conn = sandbox.connections["officeflow_ses"]
    return boto3.client("sesv2", region_name="us-east-1", endpoint_url=conn["extra"]["endpoint_url"],
                        aws_access_key_id=key_id or conn["login"], aws_secret_access_key=secret or conn["password"],
                        config=Config(retries={"total_max_attempts": 1}))


def simple(subject="Hello", **extra):
    return {"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "hi"}, "Html": {"Data": "<p>hi</p>"}},
                       **extra}}


def error_code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_simple_send_with_attachment_is_accepted_and_recorded(sandbox):
    pdf = b"%PDF-1.4 offer letter"
    response = ses_client(sandbox).send_email(
        FromEmailAddress="People <people@officeflow.test>", Destination={"ToAddresses": ["ada@example.com"]},
        Content=simple(Attachments=[{"RawContent": pdf, "FileName": "offer.pdf", "ContentType": "application/pdf"}],
                       Headers=[{"Name": "X-OfficeFlow-Template", "Value": "welcome"}]),
        EmailTags=[{"Name": "officeflow_template", "Value": "welcome"}])
    assert response["MessageId"].startswith("0100")
    [message] = sandbox.state("ses")["messages"]
    assert message["MessageId"] == response["MessageId"]
    assert message["to"] == ["ada@example.com"] and message["subject"] == "Hello"
    assert message["text"] == "hi" and message["html"] == "<p>hi</p>" and message["content_kind"] == "Simple"
    assert message["attachments"] == [{"filename": "offer.pdf", "content_type": "application/pdf",
                                       "size": len(pdf), "sha256": hashlib.sha256(pdf).hexdigest()}]
    assert message["headers"] == {"X-OfficeFlow-Template": "welcome"}
    assert message["tags"] == {"officeflow_template": "welcome"}


def test_raw_mime_send_takes_recipients_from_the_headers(sandbox):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "people@officeflow.test", "grace@example.com", "Raw hello"
    msg.set_content("plain body")
    msg.add_alternative("<p>html body</p>", subtype="html")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    response = ses_client(sandbox).send_email(Content={"Raw": {"Data": msg.as_bytes()}})
    [message] = sandbox.state("ses")["messages"]
    assert message["MessageId"] == response["MessageId"] and message["content_kind"] == "Raw"
    assert message["to"] == ["grace@example.com"] and message["subject"] == "Raw hello"
    assert message["text"].strip() == "plain body" and "html body" in message["html"]
    assert [a["filename"] for a in message["attachments"]] == ["data.csv"]


def test_wrong_secret_fails_the_signature_check(sandbox):
    conn = sandbox.connections["officeflow_ses"]
    with pytest.raises(ClientError) as exc:
        ses_client(sandbox, secret=conn["password"] + "x").send_email(
            FromEmailAddress="people@officeflow.test", Destination={"ToAddresses": ["a@example.com"]}, Content=simple())
    assert error_code(exc) == ("InvalidSignatureException", 403)
    assert "signature we calculated does not match" in str(exc.value)
    assert sandbox.state("ses")["messages"] == []


def test_unknown_access_key_is_unrecognized(sandbox):
    with pytest.raises(ClientError) as exc:
        ses_client(sandbox, key_id="AKIAUNKNOWN000000000", secret="s").send_email(
            FromEmailAddress="people@officeflow.test", Destination={"ToAddresses": ["a@example.com"]}, Content=simple())
    assert error_code(exc) == ("UnrecognizedClientException", 403)


def test_unverified_sender_is_message_rejected(sandbox):
    with pytest.raises(ClientError) as exc:
        ses_client(sandbox).send_email(FromEmailAddress="ceo@not-verified.example",
                                       Destination={"ToAddresses": ["a@example.com"]}, Content=simple())
    assert error_code(exc) == ("MessageRejected", 400)
    assert "not verified" in exc.value.response["Error"]["Message"]


@pytest.mark.parametrize(("destination", "content", "message"), [
    ({"ToAddresses": []}, simple(), "at least one recipient"),
    ({"ToAddresses": ["not-an-address"]}, simple(), "Invalid email address"),
    ({"ToAddresses": ["a@example.com"]}, {"Simple": {"Subject": {"Data": "x"}, "Body": {}}}, "Text or Html"),
], ids=["no-recipient", "bad-address", "no-body"])
def test_validation_errors_are_bad_request(sandbox, destination, content, message):
    with pytest.raises(ClientError) as exc:
        ses_client(sandbox).send_email(FromEmailAddress="people@officeflow.test", Destination=destination,
                                       Content=content)
    assert error_code(exc) == ("BadRequestException", 400)
    assert message in exc.value.response["Error"]["Message"]


def test_injected_throttling_is_too_many_requests(sandbox):
    sandbox.fault("ses", path="/v2/email/outbound-emails", status=429)
    with pytest.raises(ClientError) as exc:
        ses_client(sandbox).send_email(FromEmailAddress="people@officeflow.test",
                                       Destination={"ToAddresses": ["a@example.com"]}, Content=simple())
    assert error_code(exc) == ("TooManyRequestsException", 429)


def test_unsigned_request_is_refused(sandbox):
    import httpx

    response = httpx.post(f"{sandbox.url}/ses/v2/email/outbound-emails", json={"Content": simple()})
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json() == {"message": "Missing Authentication Token"}
