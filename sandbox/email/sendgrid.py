"""SendGrid emulation: the v3 Mail Send API (``POST /v3/mail/send``) as the official ``sendgrid`` client calls it.

Mounted under ``/sendgrid``: the client's ``host`` is ``<sandbox>/sendgrid``. What it checks:

- **Auth**: ``Authorization: Bearer <API key>`` against ``Credentials.extra["sendgrid_api_keys"]``;
  otherwise 401 ``{"errors": [{"message": "The provided authorization grant is invalid, expired, or
  revoked", "field": null, "help": null}]}``.
- **Validation** in SendGrid's shape ``{"errors": [{"message", "field", "help"}]}`` (400), every problem
  listed: ``personalizations`` 1 to 1000 with at least one ``to``, valid addresses, at most 1000 recipients in total;
  ``from.email``; ``subject`` (top level or in every personalization) unless ``template_id``;
  ``content`` (``text/plain`` first, then ``text/html``, non-empty values) unless ``template_id``;
  attachments need base64 ``content`` and ``filename``; ``custom_args`` values must be strings;
  ``reply_to.email``. Bodies over 30 MB: 413.
- Answers **202** with an empty body and ``X-Message-Id``; accepted messages are kept in state
  ``messages`` (personalizations, from, subject, content, attachments with size and sha256, custom_args).
- Injected 429s use SendGrid's ``{"errors": [{"field": null, "message": "too many requests"}]}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.core import Credentials, SandboxError, SandboxState, Service

MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_RECIPIENTS = 1000
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"

router = APIRouter()


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    if exc.body and "errors" in exc.body:
        return exc.body, {}
    if exc.status == 429:
        return {"errors": [{"field": None, "message": "too many requests"}]}, {}
    if exc.status == 401:
        return {"errors": [{"message": UNAUTHORIZED, "field": None, "help": None}]}, {}
    return {"errors": [{"message": exc.message, "field": None, "help": None}]}, {}


def _state(request: Request) -> tuple[SandboxState, dict[str, Any], Credentials]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("sendgrid"), request.app.state.credentials


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str | None, message: str, anchor: str = "") -> None:
        self.items.append({"message": message, "field": field, "help": f"{HELP}#{anchor}" if anchor else None})

    def check_address(self, value: Any, field: str) -> None:
        email = value.get("email") if isinstance(value, dict) else None
        if not isinstance(email, str) or not EMAIL_RE.match(email):
            self.add(f"{field}.email", "Does not contain a valid address.", "message.personalizations.to")


def validate(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every problem SendGrid would list for this mail/send body."""
    problems = _Problems()
    personalizations = body.get("personalizations")
    total = 0
    if not isinstance(personalizations, list) or not personalizations:
        problems.add("personalizations", "The personalization block is required.", "message.personalizations")
        personalizations = []
    elif len(personalizations) > 1000:
        problems.add("personalizations", "The personalizations field may not contain more than 1000 objects.",
                     "message.personalizations")
    for i, p in enumerate(personalizations):
        field = f"personalizations.{i}"
        if not isinstance(p, dict):
            problems.add(field, "Invalid type. Expected: object.", "message.personalizations")
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            problems.add(f"{field}.to", "The to array is required for all personalization objects, and must have "
                         "at least one email object with a valid email address.", "message.personalizations.to")
            to = []
        for j, address in enumerate(to + (p.get("cc") or []) + (p.get("bcc") or [])):
            problems.check_address(address, f"{field}.to.{j}")
        total += len(to) + len(p.get("cc") or []) + len(p.get("bcc") or [])
    if total > MAX_RECIPIENTS:
        problems.add("personalizations", "The total number of recipients must be less than 1000.",
                     "message.recipient_limit")
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        problems.add("from.email", "The from object must be provided for every email send. It is an object that "
                     "requires an email parameter, but may also contain a name parameter.", "message.from")
    else:
        problems.check_address(sender, "from")
    if body.get("reply_to") is not None:
        problems.check_address(body["reply_to"], "reply_to")
    templated = bool(body.get("template_id"))
    if not templated and not body.get("subject") and not all(
            isinstance(p, dict) and p.get("subject") for p in personalizations):
        problems.add("subject", "The subject is required. You can get around this requirement if you use a template "
                     "with a subject defined or if every personalization has a subject defined.", "message.subject")
    content = body.get("content")
    if not templated:
        if not isinstance(content, list) or not content:
            problems.add("content", "Unless a valid template_id is provided, the content parameter is required. "
                         "There must be at least one defined content block. We typically suggest both text/plain "
                         "and text/html blocks are included, but only one block is required.", "message.content")
        else:
            types = [c.get("type") if isinstance(c, dict) else None for c in content]
            for i, c in enumerate(content):
                if not isinstance(c, dict) or not c.get("type") or not isinstance(c.get("value"), str) or \
                        not c["value"]:
                    problems.add(f"content.{i}", "The content value must be a string at least one character in "
                                 "length.", "message.content.value")
            if "text/plain" in types and types.index("text/plain") != 0:
                problems.add("content", "If present, text/plain content must be first, followed by any other "
                             "content.", "message.content.type")
    for i, a in enumerate(body.get("attachments") or []):
        if not isinstance(a, dict) or not a.get("filename"):
            problems.add(f"attachments.{i}.filename", "The attachment filename parameter is required.",
                         "message.attachments.filename")
        content_b64 = a.get("content") if isinstance(a, dict) else None
        try:
            base64.b64decode(content_b64 or "", validate=True)
            ok = bool(content_b64)
        except (binascii.Error, ValueError, TypeError):
            ok = False
        if not ok:
            problems.add(f"attachments.{i}.content", "The attachment content must be base64 encoded.",
                         "message.attachments.content")
    for key, value in (body.get("custom_args") or {}).items():
        if not isinstance(value, str):
            problems.add(f"custom_args.{key}", "Invalid type. Expected: string, given: "
                         f"{type(value).__name__}.", "message.custom_args")
    return problems.items


@router.post("/v3/mail/send")
async def mail_send(request: Request) -> Response:
    state, data, credentials = _state(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in credentials.extra.get("sendgrid_api_keys", []):
        raise SandboxError(401, UNAUTHORIZED)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise SandboxError(413, "The JSON payload you have included in your request is too large.")
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        raise SandboxError(400, "Bad Request", body={"errors": [{"message": "Bad Request", "field": None,
                                                                  "help": None}]}) from None
    if not isinstance(body, dict):
        raise SandboxError(400, "Bad Request", body={"errors": [{"message": "Bad Request", "field": None,
                                                                  "help": None}]})
    problems = validate(body)
    if problems:
        raise SandboxError(400, problems[0]["message"], body={"errors": problems})
    message_id = secrets.token_urlsafe(16).replace("-", "A").replace("_", "b")[:22]
    attachments = []
    for a in body.get("attachments") or []:
        content = base64.b64decode(a["content"])
        attachments.append({"filename": a["filename"], "type": a.get("type"), "size": len(content),
                            "sha256": hashlib.sha256(content).hexdigest()})
    with state.lock:
        data.setdefault("messages", []).append({
            "message_id": message_id, "personalizations": body["personalizations"], "from": body["from"],
            "subject": body.get("subject"), "content": body.get("content"), "attachments": attachments,
            "custom_args": body.get("custom_args") or {}, "headers": body.get("headers") or {},
            "reply_to": body.get("reply_to"), "at": time.time()})
    return Response(status_code=202, headers={"X-Message-Id": message_id})


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    data["messages"] = []


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random API key; the connection is an HTTP connection (host = API base, password = API key)."""
    key = "SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(32)
    credentials.extra.setdefault("sendgrid_api_keys", []).append(key)
    return {"officeflow_sendgrid": {
        "conn_type": "http", "host": f"{base_url}/sendgrid", "password": key,
        "extra": {"from_email": "people@officeflow.test"},
        "description": "SendGrid (sandbox): host = API base URL, password = API key"}}


service = Service("sendgrid", router, render_error, seed)
