"""Amazon SES v2 emulation: ``SendEmail`` (``POST /v2/email/outbound-emails``), as boto3's ``sesv2`` calls it.

Mounted under ``/ses``: the connection's ``endpoint_url`` is ``<sandbox>/ses``. What it checks:

- **Auth**: AWS Signature Version 4 (``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
  Signature=…``), recomputed with the secret of the access key (``Credentials.extra["ses_access_keys"]``)
  over the canonical request, service ``ses``, 15 minutes clock skew. Unknown key → 403
  ``UnrecognizedClientException``; wrong signature → 403 ``InvalidSignatureException``; stale date → 403
  ``InvalidSignatureException`` "Signature expired".
- **Errors** in SES v2's rest-json shape: ``{"message": …}`` with the ``x-amzn-ErrorType`` header (which
  botocore turns into ``ClientError`` codes): ``BadRequestException`` (validation), ``MessageRejected``
  (sender not a verified identity: ``Credentials.extra["ses_verified_domains"]``),
  ``TooManyRequestsException`` (429, injected).
- **Content**: ``Simple`` (Subject, Body.Text/Html, Headers, Attachments) and ``Raw`` (a base64 MIME
  message; recipients from ``Destination`` or its To/Cc headers); ``Template`` is refused (not used).
  At most 50 recipients per message, 40 MB per message.
- Answers ``200 {"MessageId": "…"}``; every accepted message is kept in state ``messages`` (sender,
  recipients, subject, text, html, attachments with size and sha256, tags, headers).
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.core import Credentials, SandboxError, SandboxState, Service

MAX_RECIPIENTS = 50
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
SKEW_SECONDS = 15 * 60
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
                     r"\s*Signature=(?P<sig>[0-9a-f]{64})$")
DEFAULT_TYPES = {400: "BadRequestException", 403: "AccessDeniedException", 404: "NotFoundException",
                 429: "TooManyRequestsException", 500: "InternalFailure", 503: "ServiceUnavailable"}

router = APIRouter()


def ses_error(status: int, error_type: str, message: str) -> SandboxError:
    return SandboxError(status, message, reason=error_type)


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    error_type = exc.reason if exc.reason and exc.reason != "injected" else DEFAULT_TYPES.get(exc.status,
                                                                                              "InternalFailure")
    return {"message": exc.message}, {"x-amzn-ErrorType": error_type, "x-amzn-RequestId": secrets.token_hex(16)}


def _state(request: Request) -> tuple[SandboxState, dict[str, Any], Credentials]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("ses"), request.app.state.credentials


# --- SigV4 ----------------------------------------------------------------------------------------

def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def verify_sigv4(request: Request, body: bytes, keys: dict[str, str]) -> str:
    """Check the request's SigV4 signature; return the access key id or raise SES's 403s."""
    match = AUTH_RE.match(request.headers.get("authorization", ""))
    if not match:
        raise ses_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    access_key, day, region, service, terminal = (match["cred"].split("/") + [""] * 5)[:5]
    if access_key not in keys:
        raise ses_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if service != "ses" or terminal != "aws4_request":
        raise ses_error(403, "InvalidSignatureException", "Credential should be scoped to correct service: 'ses'.")
    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ses_error(403, "IncompleteSignatureException", "Missing or malformed X-Amz-Date header.") from None
    if abs(time.time() - signed_at.timestamp()) > SKEW_SECONDS or not amz_date.startswith(day):
        raise ses_error(403, "InvalidSignatureException", "Signature expired: " + amz_date + " is now earlier or "
                        "later than the allowed 15 minutes.")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise ses_error(403, "InvalidSignatureException", "'Host' must be a signed header.")
    canonical_headers = "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed)
    path = request.scope.get("raw_path", b"").decode() or request.url.path
    canonical = "\n".join([request.method, quote(path.split("?")[0], safe="/-_.~%"),
                           _canonical_query(request.url.query), canonical_headers, match["signed"],
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(keys[access_key], day, region, service), to_sign.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["sig"]):
        raise ses_error(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                        "signature you provided. Check your AWS Secret Access Key and signing method. Consult the "
                        "service documentation for details.")
    return access_key


# --- SendEmail ------------------------------------------------------------------------------------

def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"(?:[^<>]*<)?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?", value.strip()):
        raise ses_error(400, "BadRequestException", f"Invalid email address <{value}> in {where}.")
    return value.strip()


def _bare(address: str) -> str:
    return email.utils.parseaddr(address)[1].lower()


def _check_sender(sender: str, credentials: Credentials) -> None:
    domains = [d.lower() for d in credentials.extra.get("ses_verified_domains", [])]
    domain = _bare(sender).rpartition("@")[2]
    if domains and domain not in domains:
        raise ses_error(400, "MessageRejected", "Email address is not verified. The following identities failed the "
                        f"check in region US-EAST-1: {sender}")


def _blob(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ses_error(400, "BadRequestException", f"Invalid base64 in {where}.") from None


def _attachment_record(name: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {"filename": name, "content_type": content_type, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def _simple(simple: Any) -> dict[str, Any]:
    if not isinstance(simple, dict):
        raise ses_error(400, "BadRequestException", "Content.Simple must be an object.")
    subject = (simple.get("Subject") or {}).get("Data")
    if not isinstance(subject, str) or not subject:
        raise ses_error(400, "BadRequestException", "Subject is required for Simple content.")
    body = simple.get("Body") or {}
    text, html = (body.get("Text") or {}).get("Data"), (body.get("Html") or {}).get("Data")
    if not text and not html:
        raise ses_error(400, "BadRequestException", "Body must contain Text or Html.")
    attachments = []
    for i, a in enumerate(simple.get("Attachments") or []):
        if not isinstance(a, dict) or not a.get("FileName") or "RawContent" not in a:
            raise ses_error(400, "BadRequestException", f"Attachments[{i}]: FileName and RawContent are required.")
        attachments.append(_attachment_record(a["FileName"], a.get("ContentType") or "application/octet-stream",
                                              _blob(a["RawContent"], f"Attachments[{i}].RawContent")))
    headers = {h.get("Name"): h.get("Value") for h in simple.get("Headers") or [] if isinstance(h, dict)}
    return {"subject": subject, "text": text, "html": html, "attachments": attachments, "headers": headers}


def _raw(raw: Any) -> tuple[dict[str, Any], str | None, list[str]]:
    if not isinstance(raw, dict) or "Data" not in raw:
        raise ses_error(400, "BadRequestException", "Content.Raw.Data is required.")
    data = _blob(raw["Data"], "Content.Raw.Data")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ses_error(400, "MessageRejected", "Message length is more than 40 MB.")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not msg["From"]:
        raise ses_error(400, "MessageRejected", "Missing required header 'From'.")
    text = html = None
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_filename():
            payload = part.get_payload(decode=True)
            attachments.append(_attachment_record(str(part.get_filename()), part.get_content_type(),
                                                  payload if isinstance(payload, bytes) else b""))
        elif part.get_content_type() == "text/plain" and text is None:
            text = part.get_content()
        elif part.get_content_type() == "text/html" and html is None:
            html = part.get_content()
    header_rcpts = [a for h in ("To", "Cc") for a in msg.get_all(h, [])]
    headers = {k: str(v) for k, v in msg.items() if k.lower().startswith("x-")}
    return ({"subject": str(msg["Subject"] or ""), "text": text, "html": html, "attachments": attachments,
             "headers": headers}, str(msg["From"]), [str(a) for a in header_rcpts])


@router.post("/v2/email/outbound-emails")
async def send_email(request: Request) -> JSONResponse:
    state, data, credentials = _state(request)
    body = await request.body()
    verify_sigv4(request, body, credentials.extra.get("ses_access_keys", {}))
    try:
        payload = json.loads(body or b"{}")
    except json.JSONDecodeError:
        raise ses_error(400, "SerializationException", "Request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise ses_error(400, "SerializationException", "Request body must be a JSON object.")
    content = payload.get("Content")
    if not isinstance(content, dict) or len([k for k in ("Simple", "Raw", "Template") if k in content]) != 1:
        raise ses_error(400, "BadRequestException", "Content must contain exactly one of Simple, Raw or Template.")
    destination = payload.get("Destination") or {}
    recipients = [_address(a, "Destination") for key in ("ToAddresses", "CcAddresses", "BccAddresses")
                  for a in destination.get(key) or []]
    sender = payload.get("FromEmailAddress")
    if "Simple" in content:
        message = _simple(content["Simple"])
    elif "Raw" in content:
        message, raw_from, header_rcpts = _raw(content["Raw"])
        sender = sender or raw_from
        recipients = recipients or [_address(a, "To") for a in header_rcpts]
    else:
        raise ses_error(400, "BadRequestException", "Template content is not supported by the sandbox.")
    if not sender:
        raise ses_error(400, "BadRequestException", "FromEmailAddress is required.")
    sender = _address(sender, "FromEmailAddress")
    if not recipients:
        raise ses_error(400, "BadRequestException", "Destination must contain at least one recipient.")
    if len(recipients) > MAX_RECIPIENTS:
        raise ses_error(400, "MessageRejected", f"Recipient count exceeds {MAX_RECIPIENTS}.")
    _check_sender(sender, credentials)
    tags = {t.get("Name"): t.get("Value") for t in payload.get("EmailTags") or [] if isinstance(t, dict)}
    for name, value in tags.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(name)) or not re.fullmatch(r"[A-Za-z0-9_.@-]{0,256}",
                                                                                    str(value)):
            raise ses_error(400, "BadRequestException", f"Invalid tag {name!r}: names and values may contain only "
                            "ASCII letters, digits, underscores and dashes.")
    message_id = f"0100{secrets.token_hex(6)}-{secrets.token_hex(4)}-{secrets.token_hex(2)}-" \
                 f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}-000000"
    with state.lock:
        data.setdefault("messages", []).append({
            "MessageId": message_id, "from": sender, "to": recipients, **message, "tags": tags,
            "content_kind": "Simple" if "Simple" in content else "Raw",
            "configuration_set": payload.get("ConfigurationSetName"), "at": time.time()})
    return JSONResponse({"MessageId": message_id})


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    data["messages"] = []


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """An access key pair the sandbox accepts; the connection is an ``aws`` connection (login = key id,
    password = secret) with ``endpoint_url`` pointing at ``<sandbox>/ses``."""
    key_id = "AKIA" + secrets.token_hex(8).upper()
    secret = secrets.token_urlsafe(30)
    credentials.extra.setdefault("ses_access_keys", {})[key_id] = secret
    credentials.extra.setdefault("ses_verified_domains", ["officeflow.test", "example.com"])
    return {"officeflow_ses": {
        "conn_type": "aws", "login": key_id, "password": secret,
        "extra": {"region_name": "us-east-1", "endpoint_url": f"{base_url}/ses",
                  "from_email": "people@officeflow.test"},
        "description": "Amazon SES v2 (sandbox): login/password = access key, extra.endpoint_url = the sandbox"}}


service = Service("ses", router, render_error, seed)
