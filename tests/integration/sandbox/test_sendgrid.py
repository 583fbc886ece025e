"""The SendGrid emulation (sandbox/email/sendgrid.py) over real HTTP with the official sendgrid client."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient


def client(sandbox, key: str | None = None) -> SendGridAPIClient:
    conn = sandbox.connections["officeflow_sendgrid"]
    return SendGridAPIClient(api_key=key or conn["password"], host=conn["host"])


def mail(**overrides):
    body = {"personalizations": [{"to": [{"email": "ada@example.com"}]}], "from": {"email": "people@officeflow.test"},
            "subject": "Hello", "content": [{"type": "text/plain", "value": "hi"}, {"type": "text/html",
                                                                                     "value": "<p>hi</p>"}]}
    body.update(overrides)
    return body


def test_send_is_accepted_with_a_message_id_and_recorded(sandbox):
    pdf = b"%PDF-1.4 contract"
    response = client(sandbox).send(mail(
        attachments=[{"content": base64.b64encode(pdf).decode(), "filename": "contract.pdf",
                      "type": "application/pdf"}],
        custom_args={"officeflow_delivery_id": "d-1"}))
    assert response.status_code == 202 and response.body == b""
    message_id = response.headers["X-Message-Id"]
    [message] = sandbox.state("sendgrid")["messages"]
    assert message["message_id"] == message_id
    assert message["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert message["custom_args"] == {"officeflow_delivery_id": "d-1"}
    assert message["attachments"] == [{"filename": "contract.pdf", "type": "application/pdf", "size": len(pdf),
                                       "sha256": hashlib.sha256(pdf).hexdigest()}]


@pytest.mark.parametrize("key", ["SG.wrong", None])
def test_bad_or_missing_api_key_is_401_in_sendgrids_shape(sandbox, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(f"{sandbox.url}/sendgrid/v3/mail/send", json=mail(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "The provided authorization grant is invalid, expired, or "
                                                      "revoked", "field": None, "help": None}]}


def test_the_client_raises_on_a_bad_key(sandbox):
    with pytest.raises(HTTPError) as exc:
        client(sandbox, key="SG.nope").send(mail())
    assert exc.value.status_code == 401
    assert sandbox.state("sendgrid")["messages"] == []


def test_validation_lists_every_problem(sandbox):
    with pytest.raises(HTTPError) as exc:
        client(sandbox).send({"personalizations": [{"to": []}], "from": {"email": "nope"},
                              "content": [{"type": "text/html", "value": "<p>x</p>"}, {"type": "text/plain",
                                                                                         "value": "x"}],
                              "custom_args": {"n": 1}})
    assert exc.value.status_code == 400
    errors = json.loads(exc.value.body)["errors"]
    fields = {e["field"] for e in errors}
    assert {"personalizations.0.to", "from.email", "subject", "content", "custom_args.n"} <= fields
    assert all(set(e) == {"message", "field", "help"} for e in errors)
    assert sandbox.state("sendgrid")["messages"] == []


def test_injected_rate_limit_uses_sendgrids_shape(sandbox):
    sandbox.fault("sendgrid", path="/v3/mail/send", status=429)
    with pytest.raises(HTTPError) as exc:
        client(sandbox).send(mail())
    assert exc.value.status_code == 429
    assert json.loads(exc.value.body) == {"errors": [{"field": None, "message": "too many requests"}]}
