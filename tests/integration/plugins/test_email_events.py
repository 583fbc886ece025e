"""Email provider events and the email API, in-process on the real store: SNS (SES notifications) with a
locally generated signing certificate served over HTTP, SendGrid's ECDSA-signed Event Webhook, stats
and suppressions."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from include.officeflow import email_tracking as tracking
from include.officeflow.store import AuditLog, EmailDelivery, session_scope
from tests.harness.gateway_checks import assert_error
from tests.harness.mail import SnsSigner, deliveries

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


@pytest.fixture
def sns(settings_env):
    from plugins.officeflow_gateway.email.sns import certificates

    signer = SnsSigner()
    settings_env.setenv("OFFICEFLOW_SNS_TRUSTED_URL_PATTERN", rf"^{signer.base}/")
    certificates.clear()
    yield signer
    signer.stop()
    certificates.clear()


@pytest.fixture
def sendgrid_key(settings_env):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    settings_env.setenv("OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    return key


def sent_delivery(store_url: str, recipient: str, *, provider: str, message_id: str, template: str = "welcome") -> str:
    claim = tracking.claim(store_url, key=uuid.uuid4().hex, recipient=recipient, template=template, subject="Hi",
                           provider=provider, dag_id="d", run_id="r", task_id="t")
    tracking.mark_sent(store_url, claim.delivery_id, message_id)
    return claim.delivery_id


def status_of(delivery_id: str) -> tuple[str, str | None]:
    with session_scope() as session:
        row = session.get(EmailDelivery, delivery_id)
        return row.status, row.status_detail


def rejections() -> list[AuditLog]:
    from sqlalchemy import select

    with session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == "email_event.rejected")))


def bounce(message_id: str, address: str, bounce_type: str = "Permanent") -> dict:
    return {"notificationType": "Bounce", "mail": {"messageId": message_id, "destination": [address]},
            "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "timestamp": "2026-11-29T10:00:00.000Z",
                       "bouncedRecipients": [{"emailAddress": address, "diagnosticCode": "smtp; 550 5.1.1 unknown"}]}}


def post_sns(client, message: dict):
    return client.post("/email/ses", content=json.dumps(message),
                       headers={"x-amz-sns-message-type": message["Type"], "Content-Type": "text/plain"})


# --- SNS / SES ------------------------------------------------------------------------------------

def test_subscription_confirmation_is_verified_and_confirmed(client, email_store, sns):
    token = uuid.uuid4().hex
    message = sns.sign({"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "Token": token,
                        "TopicArn": TOPIC, "Message": "You have chosen to subscribe to the topic",
                        "SubscribeURL": f"{sns.base}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}",
                        "Timestamp": "2026-11-29T10:00:00.000Z"})
    response = post_sns(client, message)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "confirmed", "topic": TOPIC}
    assert sns.visits == [f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_permanent_bounce_marks_the_delivery_and_suppresses_the_address(client, email_store, sns, version):
    delivery = sent_delivery(email_store, "Ada@Example.com", provider="ses", message_id="0100-abc")
    response = post_sns(client, sns.notification(bounce("0100-abc", "ada@example.com"), version=version))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed", "type": "Bounce", "matched": 1, "suppressed": 1, "ignored": 0}
    status, detail = status_of(delivery)
    assert status == "bounced" and "550 5.1.1" in detail
    assert tracking.get_suppression(email_store, "ada@example.com")["reason"] == "bounce"
    # SNS redelivers: nothing changes, the certificate is cached
    again = post_sns(client, sns.notification(bounce("0100-abc", "ada@example.com"), version=version))
    assert again.json()["suppressed"] == 0 and sns.cert_fetches == 1


def test_transient_bounce_is_recorded_but_not_suppressed(client, email_store, sns):
    delivery = sent_delivery(email_store, "full@example.com", provider="ses", message_id="0100-full")
    post_sns(client, sns.notification(bounce("0100-full", "full@example.com", "Transient")))
    assert status_of(delivery)[0] == "bounced"
    assert tracking.get_suppression(email_store, "full@example.com") is None


def test_complaint_and_delivery_notifications(client, email_store, sns):
    delivered = sent_delivery(email_store, "grace@example.com", provider="ses", message_id="0100-g")
    complained = sent_delivery(email_store, "linus@example.com", provider="ses", message_id="0100-l")
    post_sns(client, sns.notification({"notificationType": "Delivery", "mail": {"messageId": "0100-g"},
                                       "delivery": {"recipients": ["grace@example.com"],
                                                    "smtpResponse": "250 ok", "timestamp": "2026-11-29T10:00:00Z"}}))
    post_sns(client, sns.notification({"notificationType": "Complaint", "mail": {"messageId": "0100-l"},
                                       "complaint": {"complainedRecipients": [{"emailAddress": "linus@example.com"}],
                                                     "complaintFeedbackType": "abuse"}}))
    # a late delivery notification does not overwrite the complaint
    post_sns(client, sns.notification({"notificationType": "Delivery", "mail": {"messageId": "0100-l"},
                                       "delivery": {"recipients": ["linus@example.com"]}}))
    assert status_of(delivered) == ("delivered", "250 ok")
    assert status_of(complained)[0] == "complained"
    assert tracking.get_suppression(email_store, "linus@example.com")["reason"] == "complaint"
    assert tracking.get_suppression(email_store, "grace@example.com") is None


def test_forged_signature_is_rejected_and_changes_nothing(client, email_store, sns):
    delivery = sent_delivery(email_store, "ada@example.com", provider="ses", message_id="0100-f")
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sns.sign({"Type": "Notification", "MessageId": "m1", "TopicArn": TOPIC,
                       "Message": json.dumps(bounce("0100-f", "ada@example.com")),
                       "Timestamp": "2026-11-29T10:00:00.000Z"}, key=forger)
    assert_error(post_sns(client, forged), 403, "invalid_signature")
    genuine = sns.notification(bounce("0100-f", "ada@example.com"))
    tampered = {**genuine, "Message": json.dumps(bounce("0100-f", "victim@example.com"))}
    assert_error(post_sns(client, tampered), 403, "invalid_signature")
    assert status_of(delivery)[0] == "sent"
    assert tracking.get_suppression(email_store, "victim@example.com") is None
    assert [r.outcome for r in rejections()][-2:] == ["rejected", "rejected"]


def test_certificate_from_an_untrusted_url_is_not_even_fetched(client, email_store, sns):
    message = sns.notification(bounce("0100-x", "ada@example.com"))
    message = sns.sign({k: v for k, v in message.items() if k not in ("Signature", "SigningCertURL")}
                       | {"SigningCertURL": "http://evil.example/cert.pem"})
    error = assert_error(post_sns(client, message), 403, "invalid_signature")
    assert "not a trusted SNS certificate URL" in error["message"]
    assert sns.cert_fetches == 0
    assert tracking.get_suppression(email_store, "ada@example.com") is None


def test_default_pattern_accepts_only_https_amazonaws_hosts():
    import re

    from include.officeflow.settings import Settings

    pattern = Settings.model_fields["sns_trusted_url_pattern"].default
    assert re.match(pattern, "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    for url in ("http://sns.eu-west-1.amazonaws.com/x.pem", "https://sns.eu-west-1.amazonaws.com.evil.io/x.pem",
                "https://evil.io/sns.us-east-1.amazonaws.com/x.pem"):
        assert not re.match(pattern, url), url


def test_unknown_signature_version_and_other_topics_are_rejected(client, email_store, sns, settings_env):
    message = sns.notification(bounce("0100-y", "ada@example.com"))
    assert_error(post_sns(client, {**message, "SignatureVersion": "3"}), 403, "invalid_signature")
    settings_env.setenv("OFFICEFLOW_SES_SNS_TOPIC_ARNS", json.dumps(["arn:aws:sns:us-east-1:1:other"]))
    error = assert_error(post_sns(client, message), 403, "invalid_signature")
    assert "is not configured" in error["message"]


def test_not_an_sns_message_is_400(client, email_store, sns):
    assert_error(client.post("/email/ses", content=b"not json"), 400, "invalid_body")
    assert_error(client.post("/email/ses", json={"Type": "Other"}), 400, "invalid_body")


# --- SendGrid -------------------------------------------------------------------------------------

def signed_sendgrid(key, events: list, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    ts = str(timestamp or int(time.time()))
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                  "X-Twilio-Email-Event-Webhook-Timestamp": ts, "Content-Type": "application/json"}


def sg_event(kind: str, email: str, delivery_id: str | None = None, message_id: str = "sgmsg", **extra) -> dict:
    event = {"email": email, "event": kind, "timestamp": int(time.time()), "sg_event_id": uuid.uuid4().hex,
             "sg_message_id": f"{message_id}.filter0001.16648.5515E0B88.0", **extra}
    if delivery_id:
        event["officeflow_delivery_id"] = delivery_id
    return event


def test_signed_sendgrid_events_update_deliveries_and_suppress(client, email_store, sendgrid_key):
    d1 = sent_delivery(email_store, "a@example.com", provider="sendgrid", message_id="m-a")
    d2 = sent_delivery(email_store, "b@example.com", provider="sendgrid", message_id="m-b")
    d3 = sent_delivery(email_store, "c@example.com", provider="sendgrid", message_id="m-c")
    d4 = sent_delivery(email_store, "d@example.com", provider="sendgrid", message_id="m-d")
    body, headers = signed_sendgrid(sendgrid_key, [
        sg_event("delivered", "a@example.com", d1, "m-a", response="250 OK"),
        sg_event("bounce", "b@example.com", None, "m-b", type="bounce", reason="550 unknown user"),
        sg_event("spamreport", "c@example.com", d3, "m-c"),
        sg_event("dropped", "d@example.com", d4, "m-d", reason="Bounced Address"),
        sg_event("open", "a@example.com", d1, "m-a"),
    ])
    response = client.post("/email/sendgrid", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed", "events": 5, "matched": 4, "suppressed": 3, "ignored": 1}
    assert status_of(d1)[0] == "delivered" and status_of(d2)[0] == "bounced"  # d2 found by sg_message_id
    assert status_of(d3)[0] == "complained" and status_of(d4) == ("bounced", "dropped: Bounced Address")
    reasons = {a: (tracking.get_suppression(email_store, a) or {}).get("reason") for a in
               ("a@example.com", "b@example.com", "c@example.com", "d@example.com")}
    assert reasons == {"a@example.com": None, "b@example.com": "bounce", "c@example.com": "complaint",
                       "d@example.com": "bounce"}


@pytest.mark.parametrize("tamper", ["body", "timestamp", "other-key", "stale", "missing"])
def test_unverified_sendgrid_events_are_rejected(client, email_store, sendgrid_key, tamper):
    delivery = sent_delivery(email_store, "a@example.com", provider="sendgrid", message_id="m-a")
    events = [sg_event("bounce", "a@example.com", delivery, "m-a")]
    key = ec.generate_private_key(ec.SECP256R1()) if tamper == "other-key" else sendgrid_key
    stale = int(time.time()) - 3600 if tamper == "stale" else None
    body, headers = signed_sendgrid(key, events, stale)
    if tamper == "body":
        body = body.replace(b"a@example.com", b"x@example.com")
    elif tamper == "timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(headers[
            "X-Twilio-Email-Event-Webhook-Timestamp"]) + 1)
    elif tamper == "missing":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    assert_error(client.post("/email/sendgrid", content=body, headers=headers), 403, "invalid_signature")
    assert status_of(delivery)[0] == "sent"
    assert tracking.get_suppression(email_store, "a@example.com") is None
    assert tracking.get_suppression(email_store, "x@example.com") is None


def test_sendgrid_webhook_without_a_configured_key_refuses_everything(client, email_store, settings_env):
    settings_env.delenv("OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    assert_error(client.post("/email/sendgrid", json=[]), 503, "not_configured")


# --- stats and suppressions API -------------------------------------------------------------------

def test_stats_per_template_and_day(client, admin, email_store):
    d = [sent_delivery(email_store, f"u{i}@example.com", provider="smtp", message_id=f"m{i}") for i in range(4)]
    sent_delivery(email_store, "m@example.com", provider="smtp", message_id="mm", template="manager_heads_up")
    tracking.record_event(email_store, provider="ses", event="delivered", recipient="u0@example.com", delivery_id=d[0])
    tracking.record_event(email_store, provider="ses", event="bounced", recipient="u1@example.com", delivery_id=d[1],
                          suppress_reason="bounce")
    tracking.claim(email_store, key="k-suppressed", recipient="u1@example.com", template="welcome", subject="s",
                   provider="smtp")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with session_scope(email_store) as session:  # one welcome email from yesterday
        session.get(EmailDelivery, d[3]).created_at = yesterday
    today = datetime.now(UTC).date().isoformat()
    response = client.get("/api/v1/email/stats", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {(r["template"], r["day"]): r for r in body["stats"]}
    assert set(rows) == {("welcome", today), ("manager_heads_up", today), ("welcome", yesterday.date().isoformat())}
    welcome = rows[("welcome", today)]
    assert {k: welcome[k] for k in ("total", "sent", "delivered", "bounced", "suppressed")} == {
        "total": 4, "sent": 3, "delivered": 1, "bounced": 1, "suppressed": 1}
    only = client.get("/api/v1/email/stats", params={"from": today, "to": today, "template": "welcome"},
                      headers=admin).json()
    assert [(r["template"], r["day"]) for r in only["stats"]] == [("welcome", today)]
    assert only["from"] == today and only["to"] == today
    assert_error(client.get("/api/v1/email/stats", params={"from": today, "to": "2000-01-01"}, headers=admin),
                 422, "validation_error")
    assert_error(client.get("/api/v1/email/stats", params={"from": "yesterday"}, headers=admin), 422,
                 "validation_error")


def test_email_api_needs_a_token_and_permission(client, auth_headers, email_store):
    assert_error(client.get("/api/v1/email/stats"), 401, "unauthorized")
    assert_error(client.get("/api/v1/email/suppressions", headers=auth_headers("viewer")), 403, "forbidden")
    assert_error(client.delete("/api/v1/email/suppressions/a@example.com", headers=auth_headers("viewer")), 403,
                 "forbidden")


def test_suppressions_list_add_get_and_delete(client, admin, email_store):
    tracking.suppress(email_store, "bounced@example.com", reason="bounce", source="ses", detail="550")
    created = client.post("/api/v1/email/suppressions", json={"address": "Manual@Example.com"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["address"] == "manual@example.com" and created.json()["reason"] == "manual"
    assert client.post("/api/v1/email/suppressions", json={"address": "manual@example.com"},
                       headers=admin).status_code == 200
    listing = client.get("/api/v1/email/suppressions", headers=admin).json()
    assert listing["total_entries"] == 2
    assert {s["address"] for s in listing["suppressions"]} == {"bounced@example.com", "manual@example.com"}
    one = client.get("/api/v1/email/suppressions/BOUNCED@example.com", headers=admin).json()
    assert (one["reason"], one["source"], one["detail"]) == ("bounce", "ses", "550")
    assert client.delete("/api/v1/email/suppressions/bounced@example.com", headers=admin).status_code == 204
    assert_error(client.delete("/api/v1/email/suppressions/bounced@example.com", headers=admin), 404, "not_found")
    assert_error(client.get("/api/v1/email/suppressions/bounced@example.com", headers=admin), 404, "not_found")
    assert not tracking.is_suppressed(email_store, "bounced@example.com")
    assert_error(client.post("/api/v1/email/suppressions", json={"address": "nope"}, headers=admin), 422,
                 "validation_error")
    assert deliveries(email_store) == []


# --- domain events (docs/events.md) ---------------------------------------------------------------


def test_a_bounce_writes_one_email_bounced_event_with_ids_only(client, email_store, sns):
    from tests.harness.outbox import assert_no_personal_data, events

    delivery = sent_delivery(email_store, "Ada@Example.com", provider="ses", message_id="0100-evt")
    [sent] = events(email_store, "email")
    assert sent["type"] == "com.officeflow.email.sent" and sent["subject"] == delivery
    response = post_sns(client, sns.notification(bounce("0100-evt", "ada@example.com")))
    assert response.status_code == 200, response.text
    [_, bounced] = events(email_store, "email")
    assert bounced["type"] == "com.officeflow.email.bounced" and bounced["subject"] == delivery
    assert bounced["data"] == {"delivery_id": delivery, "template": "welcome", "provider": "ses",
                               "status": "bounced", "message_id": "0100-evt", "dag_id": "d", "run_id": "r",
                               "task_id": "t", "attempts": 1}
    assert bounced["organizationid"] == "default" and bounced["correlationid"]  # the callback request's
    assert_no_personal_data(bounced, "ada@example.com", "550 5.1.1")
    # SNS redelivers: the delivery does not change, no event
    post_sns(client, sns.notification(bounce("0100-evt", "ada@example.com")))
    assert len(events(email_store, "email")) == 2


def test_sendgrid_events_write_an_event_per_delivery_they_move(client, email_store, sendgrid_key):
    from tests.harness.outbox import events

    bounced = sent_delivery(email_store, "b@example.com", provider="sendgrid", message_id="m-b")
    complained = sent_delivery(email_store, "c@example.com", provider="sendgrid", message_id="m-c")
    body, headers = signed_sendgrid(sendgrid_key, [
        sg_event("bounce", "b@example.com", bounced, "m-b", type="bounce", reason="550 unknown user"),
        sg_event("spamreport", "c@example.com", complained, "m-c"),
        sg_event("bounce", "nobody@example.com", None, "m-unknown", type="bounce"),  # no delivery: no event
    ])
    response = client.post("/email/sendgrid", content=body, headers={**headers, "X-Correlation-ID": "sg-7"})
    assert response.status_code == 200, response.text
    moved = [(e["type"], e["subject"], e["correlationid"]) for e in events(email_store, "email")
             if e["type"] != "com.officeflow.email.sent"]
    assert moved == [("com.officeflow.email.bounced", bounced, "sg-7"),
                     ("com.officeflow.email.complained", complained, "sg-7")]


def test_a_bounce_that_cannot_be_recorded_leaves_no_event(email_store):
    """The suppression fails after the delivery's change and its event: the transaction rolls back whole."""
    from sqlalchemy.exc import DBAPIError

    from tests.harness.outbox import events

    delivery = sent_delivery(email_store, "a@example.com", provider="sendgrid", message_id="m-a")
    too_long = "x" * 330 + "@example.com"  # longer than the suppression list's column
    with pytest.raises(DBAPIError):
        tracking.record_event(email_store, provider="sendgrid", event="bounced", recipient=too_long,
                              delivery_id=delivery, suppress_reason="bounce")
    assert status_of(delivery)[0] == "sent"
    assert [e["type"] for e in events(email_store)] == ["com.officeflow.email.sent"]
