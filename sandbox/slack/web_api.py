"""Slack emulation: the Web API methods OfficeFlow calls, as slack_sdk's ``WebClient`` calls them.

Mounted under ``/slack``: the client's ``base_url`` is ``<sandbox>/slack/api/`` and methods are
``POST|GET /slack/api/<method>`` with arguments in the query string, a form body or a JSON body (all
three are merged, as Slack accepts them). What it covers, and how closely:

- **Answers** like Slack's: HTTP 200 with ``{"ok": true, …}`` or ``{"ok": false, "error": "<code>"}``
  (plus ``response_metadata.messages`` for ``invalid_blocks``); unknown methods ``unknown_method``.
- **Auth**: ``Authorization: Bearer <token>`` (or a ``token`` argument) against
  ``Credentials.extra["slack_tokens"]``; none → ``not_authed``, a wrong one → ``invalid_auth``.
- **Rate limits**: per method per minute by Slack's tiers (tier 2 ≈ 20, tier 3 ≈ 50, tier 4 ≈ 100;
  ``chat.postMessage`` ≈ 60), over the limit HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with
  ``Retry-After`` (seconds to the next window). ``Credentials.extra["slack_rate_limit_per_minute"]``
  overrides every limit. Injected faults (``/_sandbox/faults``) answer in the same shape.
- **Methods**: ``auth.test``; ``chat.postMessage`` (``channel`` = channel id, ``#name``/name, or a user
  id → that user's DM; ``text`` or ``blocks`` required → ``no_text``; ``blocks`` (JSON string or list)
  checked for basics → ``invalid_blocks``: a list of ≤ 50 objects with a known ``type``, section/
  header/context text objects of type ``plain_text``/``mrkdwn`` within Slack's lengths, unique
  ``block_id``s; ``msg_too_long`` over 40,000 characters of text; ``is_archived``; ``not_in_channel``
  for a private channel the bot is not in; ``thread_ts`` makes a reply (the parent's ``reply_count``
  grows; an unknown ``thread_ts`` is stored as given); returns ``channel``, ``ts``, ``message``);
  ``users.lookupByEmail`` (case-insensitive; ``users_not_found``, also for deactivated users);
  ``conversations.create`` (``name`` ≤ 80 of lowercase letters, digits, ``-``, ``_`` →
  ``invalid_name_required`` / ``invalid_name_maxlength`` / ``invalid_name_specials``;
  ``name_taken`` also for archived channels; the bot is the creator and first member);
  ``conversations.invite`` (``users`` comma-separated, ≤ 1000: ``user_not_found``,
  ``cant_invite_self``, ``cant_invite`` for deactivated users, ``already_in_channel``, ``is_archived``,
  ``not_in_channel``; with several users and an error nobody is invited unless ``force``; per-user
  ``errors``); ``conversations.setTopic`` (``too_long`` over 250, ``is_archived``);
  ``conversations.archive`` (``already_archived``, ``cant_archive_general``,
  ``method_not_supported_for_channel_type`` for DMs); ``conversations.kick`` (``channel`` + ``user``:
  ``{"ok": true}``; ``channel_not_found``, ``user_not_found`` (also when ``user`` is missing),
  ``method_not_supported_for_channel_type`` for DMs, ``cant_kick_self`` for the bot,
  ``cant_kick_from_general``, ``restricted_action`` when the workspace lets only admins remove members
  (sandbox-only ``POST /slack/_sandbox/team_prefs``), ``not_in_channel`` when the user is not a member:
  a second kick of the same person is that error); ``conversations.open`` (``users`` = one user
  → the same DM every time, ``already_open``; ``return_im``); ``conversations.info``;
  ``conversations.list`` (``types``, ``exclude_archived``, ``limit`` ≤ 1000 + ``cursor``; private
  channels only when the bot is a member); ``conversations.history`` (newest first, top-level
  messages, ``limit`` + ``cursor``, ``has_more``, ``oldest`` / ``latest`` / ``inclusive``; a message's
  ``metadata``, as posted with ``chat.postMessage``, only with ``include_all_metadata``);
  ``conversations.replies`` (the same window and metadata rules; the parent always listed).
- **Seed**: team ``T0SANDBOX``, the bot user ``officeflow`` (``U0BOT00001``), ``admin@<domain>`` and
  ``people.manager@<domain>`` (or ``Credentials.extra["slack_users"]``: a list of
  ``{"email", "real_name"}``), public channels ``#general`` and ``#officeflow-alerts`` (the bot is in both).
- **Sandbox-only** ``POST /slack/_sandbox/response_url/<channel>/<ts>``: an interaction's
  ``response_url`` for that message (``replace_original`` replaces its text/blocks; ephemeral replies
  are kept in ``ephemeral``; every call in ``interaction_responses``). Clicks themselves are built and
  signed by ``tests/harness/slack.py`` (``signed_click``), as Slack signs them.
- **Sandbox-only** ``POST /slack/_sandbox/users`` ``{"email", "real_name", "deleted"?, "is_bot"?}`` adds
  a workspace member (what an admin inviting someone would do); answers the user object.

Interactivity (views, ``users.info``, and the user's side: signed slash commands, clicks, view
submissions and Events API callbacks sent to the app) is in :mod:`sandbox.slack.interactivity`.

Not covered: user tokens and scopes (``missing_scope``), Enterprise Grid, files, reactions, message
updates/deletes, Events API retries, ``chat.postMessage``'s per-channel 1/s burst rule.

State (``GET /_sandbox/state/slack``): ``team``, ``bot_user_id``, ``users`` (id -> user),
``channels`` (id -> conversation with ``members``), ``messages`` (channel id -> messages, oldest
first), ``rate_limits``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.core import Credentials, SandboxError, SandboxState, Service

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "officeflow-sandbox"
BOT_USER_ID = "U0BOT00001"
BOT_ID = "B0BOT00001"
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
MAX_NAME = 80
MAX_TOPIC = 250
MAX_TEXT = 40_000
MAX_BLOCKS = 50
BLOCK_TYPES = frozenset({"section", "divider", "image", "actions", "context", "input", "file", "header",
                         "rich_text", "video", "markdown"})
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})

#: Requests per minute by method (Slack's tiers: 1 ≈ 1, 2 ≈ 20, 3 ≈ 50, 4 ≈ 100; postMessage "special").
RATE_LIMITS: dict[str, int] = {
    "auth.test": 100, "chat.postMessage": 60, "users.lookupByEmail": 50, "conversations.create": 20,
    "conversations.invite": 50, "conversations.setTopic": 20, "conversations.archive": 20,
    "conversations.open": 50, "conversations.info": 50, "conversations.list": 20,
    "conversations.history": 50, "conversations.replies": 50, "conversations.kick": 50,
}
#: Workspace preferences on who may remove members (Slack's ``who_can_kick_channels`` / ``…_groups``): a bot
#: is neither an admin nor an owner, so anything but ``regular`` refuses its kicks.
KICK_PREFS = {"who_can_kick_channels": "regular", "who_can_kick_groups": "regular"}
KICK_PREF_VALUES = ("regular", "admin", "owner")

router = APIRouter()


class SlackError(SandboxError):
    """``{"ok": false, "error": code}`` with HTTP 200, as Slack answers method errors."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(200, code, reason=code, body=extra or None)


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    if exc.status == 429:
        code = "ratelimited"
    elif exc.status == 200 or (exc.reason and exc.reason != "injected"):
        code = exc.reason or exc.message
    else:
        code = {500: "internal_error", 503: "service_unavailable"}.get(exc.status, "fatal_error")
    return {"ok": False, "error": code, **(exc.body or {})}, {}


# --- helpers ------------------------------------------------------------------------------------

def _data(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("slack")


async def _arguments(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if raw:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("json_not_object")
            args.update(body)
        else:
            args.update(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
    return args


def _authenticate(request: Request, args: dict[str, Any]) -> None:
    credentials: Credentials = request.app.state.credentials
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    token = token or str(args.pop("token", "") or "")
    if not token:
        raise SlackError("not_authed")
    if not any(secrets.compare_digest(token, accepted) for accepted in credentials.extra.get("slack_tokens", [])):
        raise SlackError("invalid_auth")


def _rate_limit(request: Request, method: str) -> None:
    state, data = _data(request)
    credentials: Credentials = request.app.state.credentials
    override = credentials.extra.get("slack_rate_limit_per_minute")
    limit = int(override) if override else RATE_LIMITS.get(method, 50)
    now = time.time()
    window = int(now // 60) * 60
    with state.lock:
        counters = data.setdefault("rate_limits", {})
        counter = counters.get(method)
        if counter is None or counter["window"] != window:
            counter = counters[method] = {"window": window, "used": 0, "limit": limit}
        if counter["used"] >= limit:
            raise SandboxError(429, "ratelimited", reason="ratelimited",
                               headers={"Retry-After": str(max(1, int(window + 60 - now + 0.999)))})
        counter["used"] += 1


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _new_id(state: SandboxState, prefix: str) -> str:
    return f"{prefix}{state.next_id():09d}"


def _new_ts(data: dict[str, Any]) -> str:
    ts = max(time.time(), data.get("last_ts", 0.0) + 0.000001)
    data["last_ts"] = ts
    return f"{ts:.6f}"


def _user(data: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    user: dict[str, Any] | None = data["users"].get(user_id)
    return user


def _resolve_channel(data: dict[str, Any], value: Any) -> dict[str, Any]:
    """A conversation by id or name (``#name``); ``channel_not_found`` otherwise (also for private
    channels the bot is not in, which Slack does not show it)."""
    key = str(value or "").strip()
    if not key:
        raise SlackError("channel_not_found")
    channel = data["channels"].get(key)
    if channel is None:
        name = key.lstrip("#")
        channel = next((c for c in data["channels"].values() if c.get("name") == name and not c["is_im"]), None)
    if channel is None or (channel["is_private"] and BOT_USER_ID not in channel["members"]):
        raise SlackError("channel_not_found")
    return channel


def _public(channel: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in channel.items() if k != "members"}
    if not channel["is_im"]:
        out["num_members"] = len(channel["members"])
        out["is_member"] = BOT_USER_ID in channel["members"]
    return out


def _channel(state: SandboxState, data: dict[str, Any], name: str, *, private: bool = False,
             channel_id: str | None = None, general: bool = False) -> dict[str, Any]:
    now = int(time.time())
    cid = channel_id or _new_id(state, "G" if private else "C")
    channel = {
        "id": cid, "name": name, "name_normalized": name, "is_channel": not private, "is_group": private,
        "is_im": False, "is_mpim": False, "is_private": private, "is_archived": False, "is_general": general,
        "created": now, "creator": BOT_USER_ID, "context_team_id": TEAM_ID, "unlinked": 0,
        "topic": {"value": "", "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "members": [BOT_USER_ID],
    }
    data["channels"][cid] = channel
    data["messages"].setdefault(cid, [])
    return channel


def _make_user(state: SandboxState, data: dict[str, Any], email: str, real_name: str, *,
               user_id: str | None = None, is_bot: bool = False, deleted: bool = False) -> dict[str, Any]:
    uid = user_id or _new_id(state, "U")
    handle = email.split("@")[0] if email else real_name.lower().replace(" ", ".")
    profile: dict[str, Any] = {"email": email, "real_name": real_name, "display_name": real_name,
                               "real_name_normalized": real_name, "display_name_normalized": real_name}
    if is_bot:
        profile.pop("email")
        profile["bot_id"] = BOT_ID
    user: dict[str, Any] = {"id": uid, "team_id": TEAM_ID, "name": handle, "real_name": real_name, "deleted": deleted,
            "is_bot": is_bot, "is_admin": False, "tz": "Europe/London", "profile": profile}
    data["users"][uid] = user
    return user


def _message(data: dict[str, Any], channel: dict[str, Any], args: dict[str, Any],
             blocks: list[Any] | None) -> dict[str, Any]:
    ts = _new_ts(data)
    message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "team": TEAM_ID,
                               "ts": ts, "text": str(args.get("text") or "")}
    if blocks:
        message["blocks"] = blocks
    if args.get("username"):
        message["username"] = args["username"]
    if args.get("metadata"):
        metadata = args["metadata"]
        message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
    thread_ts = str(args.get("thread_ts") or "")
    messages = data["messages"].setdefault(channel["id"], [])
    if thread_ts:
        message["thread_ts"] = thread_ts
        parent = next((m for m in messages if m["ts"] == thread_ts), None)
        if parent is not None:
            parent.setdefault("thread_ts", thread_ts)
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = ts
    messages.append(message)
    return message


def _check_text_object(obj: Any, where: str, problems: list[str], *, plain_only: bool = False,
                       max_length: int = 3000) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in (("plain_text",) if plain_only else TEXT_TYPES):
        kind = "plain_text" if plain_only else "plain_text or mrkdwn"
        problems.append(f"[ERROR] must be a {kind} text object [json-pointer:{where}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]")
    elif len(text) > max_length:
        problems.append(f"[ERROR] must be less than {max_length + 1} characters [json-pointer:{where}/text]")


def validate_blocks(blocks: Any, max_blocks: int = MAX_BLOCKS) -> list[str]:
    """Slack's basic Block Kit checks: the messages it lists under ``response_metadata.messages``
    (a message holds up to 50 blocks, a modal or Home tab 100)."""
    problems: list[str] = []
    if not isinstance(blocks, list):
        return ["[ERROR] must be an array [json-pointer:/blocks]"]
    if len(blocks) > max_blocks:
        problems.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"[ERROR] unsupported type [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{where}/block_id]")
            seen.add(block_id)
        kind = block["type"]
        if kind == "header":
            _check_text_object(block.get("text"), f"{where}/text", problems, plain_only=True, max_length=150)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"[ERROR] must provide either text or fields [json-pointer:{where}]")
            if "text" in block:
                _check_text_object(block["text"], f"{where}/text", problems)
            for j, item in enumerate(block.get("fields") or []):
                _check_text_object(item, f"{where}/fields/{j}", problems, max_length=2000)
            if len(block.get("fields") or []) > 10:
                problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{where}/fields]")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                problems.append(f"[ERROR] must have 1 to 10 elements [json-pointer:{where}/elements]")
            else:
                for j, element in enumerate(elements):
                    if isinstance(element, dict) and element.get("type") == "image":
                        continue
                    _check_text_object(element, f"{where}/elements/{j}", problems)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                problems.append(f"[ERROR] must have 1 to 25 elements [json-pointer:{where}/elements]")
    return problems


# --- methods ------------------------------------------------------------------------------------

Method = Callable[[Request, SandboxState, dict[str, Any], dict[str, Any]], dict[str, Any]]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn
    return register


@method("auth.test")
def auth_test(request: Request, state: SandboxState, data: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    bot = data["users"][BOT_USER_ID]
    return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": data["team"]["name"], "user": bot["name"],
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


@method("users.lookupByEmail")
def users_lookup_by_email(request: Request, state: SandboxState, data: dict[str, Any],
                          args: dict[str, Any]) -> dict[str, Any]:
    email = str(args.get("email") or "").strip().lower()
    if not email:
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: email"]})
    for user in data["users"].values():
        if (user["profile"].get("email") or "").lower() == email and not user["deleted"]:
            return {"user": user}
    raise SlackError("users_not_found")


@method("chat.postMessage")
def chat_post_message(request: Request, state: SandboxState, data: dict[str, Any],
                      args: dict[str, Any]) -> dict[str, Any]:
    target = str(args.get("channel") or "").strip()
    if target.startswith(("U", "W")) and target in data["users"]:
        channel = _open_dm(state, data, target)[0]
    else:
        channel = _resolve_channel(data, target)
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks) if blocks.strip() else None
        except json.JSONDecodeError:
            raise SlackError("invalid_blocks_format") from None
    if blocks == []:
        blocks = None
    attachments = args.get("attachments")
    if isinstance(attachments, str):
        try:
            attachments = json.loads(attachments) if attachments.strip() else None
        except json.JSONDecodeError:
            raise SlackError("invalid_attachments") from None
    if not str(args.get("text") or "").strip() and not blocks and not attachments:
        raise SlackError("no_text")
    if blocks is not None:
        problems = validate_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", response_metadata={"messages": problems})
    if len(str(args.get("text") or "")) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if channel["is_archived"]:
        raise SlackError("is_archived")
    if channel["is_private"] and BOT_USER_ID not in channel["members"]:
        raise SlackError("not_in_channel")
    message = _message(data, channel, args, blocks)
    return {"channel": channel["id"], "ts": message["ts"], "message": message}


@method("conversations.create")
def conversations_create(request: Request, state: SandboxState, data: dict[str, Any],
                         args: dict[str, Any]) -> dict[str, Any]:
    name = str(args.get("name") or "")
    if not name.strip():
        raise SlackError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise SlackError("invalid_name_maxlength")
    if not NAME_RE.match(name):
        raise SlackError("invalid_name_specials")
    if any(c.get("name") == name for c in data["channels"].values() if not c["is_im"]):
        raise SlackError("name_taken")
    channel = _channel(state, data, name, private=_flag(args.get("is_private")))
    return {"channel": _public(channel)}


@method("conversations.invite")
def conversations_invite(request: Request, state: SandboxState, data: dict[str, Any],
                         args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise SlackError("no_user")
    if len(users) > 1000:
        raise SlackError("too_many_users")
    if channel["is_im"]:
        raise SlackError("method_not_supported_for_channel_type")
    if channel["is_archived"]:
        raise SlackError("is_archived")
    if BOT_USER_ID not in channel["members"]:
        raise SlackError("not_in_channel")
    errors: list[dict[str, Any]] = []
    valid: list[str] = []
    for uid in users:
        user = _user(data, uid)
        error = ("user_not_found" if user is None else "cant_invite_self" if uid == BOT_USER_ID
                 else "cant_invite" if user["deleted"] else "already_in_channel" if uid in channel["members"]
                 else None)
        if error:
            errors.append({"user": uid, "ok": False, "error": error})
        else:
            valid.append(uid)
    if errors and (len(users) == 1 or not _flag(args.get("force"))):
        raise SlackError(str(errors[0]["error"]), errors=errors)
    channel["members"].extend(u for u in valid if u not in channel["members"])
    result: dict[str, Any] = {"channel": _public(channel)}
    if errors:
        result["errors"] = errors
    return result


@method("conversations.setTopic")
def conversations_set_topic(request: Request, state: SandboxState, data: dict[str, Any],
                            args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    topic = str(args.get("topic") or "")
    if len(topic) > MAX_TOPIC:
        raise SlackError("too_long")
    if channel["is_archived"]:
        raise SlackError("is_archived")
    if BOT_USER_ID not in channel["members"]:
        raise SlackError("not_in_channel")
    channel["topic"] = {"value": topic, "creator": BOT_USER_ID, "last_set": int(time.time())}
    data["messages"].setdefault(channel["id"], []).append({
        "type": "message", "subtype": "channel_topic", "user": BOT_USER_ID, "ts": _new_ts(data),
        "topic": topic, "text": f"set the channel topic: {topic}"})
    return {"channel": _public(channel)}


@method("conversations.archive")
def conversations_archive(request: Request, state: SandboxState, data: dict[str, Any],
                          args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    if channel["is_im"]:
        raise SlackError("method_not_supported_for_channel_type")
    if channel["is_general"]:
        raise SlackError("cant_archive_general")
    if channel["is_archived"]:
        raise SlackError("already_archived")
    if channel["is_private"] and BOT_USER_ID not in channel["members"]:
        raise SlackError("not_in_channel")
    channel["is_archived"] = True
    return {}


@method("conversations.kick")
def conversations_kick(request: Request, state: SandboxState, data: dict[str, Any],
                       args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    user_id = str(args.get("user") or "").strip()
    user = _user(data, user_id)
    if user is None:
        raise SlackError("user_not_found")
    if channel["is_im"] or channel["is_mpim"]:
        raise SlackError("method_not_supported_for_channel_type")
    if user_id == BOT_USER_ID:
        raise SlackError("cant_kick_self")
    if channel["is_general"]:
        raise SlackError("cant_kick_from_general")
    pref = "who_can_kick_groups" if channel["is_private"] else "who_can_kick_channels"
    if data["team"]["prefs"][pref] != "regular":
        raise SlackError("restricted_action")
    if user_id not in channel["members"]:
        raise SlackError("not_in_channel")
    channel["members"].remove(user_id)
    return {}


def _open_dm(state: SandboxState, data: dict[str, Any], user_id: str) -> tuple[dict[str, Any], bool]:
    user = _user(data, user_id)
    if user is None:
        raise SlackError("user_not_found")
    if user["deleted"]:
        raise SlackError("user_disabled")
    for channel in data["channels"].values():
        if channel["is_im"] and channel["user"] == user_id:
            return channel, True
    cid = _new_id(state, "D")
    channel = {"id": cid, "created": int(time.time()), "is_im": True, "is_org_shared": False, "user": user_id,
               "is_archived": False, "is_private": True, "is_channel": False, "is_group": False,
               "is_mpim": False, "is_general": False, "members": [BOT_USER_ID, user_id]}
    data["channels"][cid] = channel
    data["messages"].setdefault(cid, [])
    return channel, False


@method("conversations.open")
def conversations_open(request: Request, state: SandboxState, data: dict[str, Any],
                       args: dict[str, Any]) -> dict[str, Any]:
    if args.get("channel"):
        channel = _resolve_channel(data, args["channel"])
        return {"channel": _public(channel) if _flag(args.get("return_im")) else {"id": channel["id"]}}
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise SlackError("users_list_not_supplied")
    if len(users) > 1:  # multi-person DMs are not emulated
        raise SlackError("method_not_supported_for_channel_type")
    channel, existed = _open_dm(state, data, users[0])
    body: dict[str, Any] = {"channel": _public(channel) if _flag(args.get("return_im")) else {"id": channel["id"]}}
    if existed:
        body["already_open"] = True
        body["no_op"] = True
    return body


@method("conversations.info")
def conversations_info(request: Request, state: SandboxState, data: dict[str, Any],
                       args: dict[str, Any]) -> dict[str, Any]:
    return {"channel": _public(_resolve_channel(data, args.get("channel")))}


def _cursor(args: dict[str, Any], default: int, maximum: int) -> tuple[int, int]:
    try:
        limit = int(args.get("limit") or default)
        offset = int(str(args.get("cursor") or "0").removeprefix("off:") or 0)
    except ValueError:
        raise SlackError("invalid_cursor") from None
    return offset, max(1, min(limit, maximum))


def _next(offset: int, limit: int, total: int) -> dict[str, Any]:
    return {"next_cursor": f"off:{offset + limit}" if offset + limit < total else ""}


@method("conversations.list")
def conversations_list(request: Request, state: SandboxState, data: dict[str, Any],
                       args: dict[str, Any]) -> dict[str, Any]:
    types = {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
    exclude_archived = _flag(args.get("exclude_archived"))

    def listed(c: dict[str, Any]) -> bool:
        kind = "im" if c["is_im"] else "private_channel" if c["is_private"] else "public_channel"
        if kind not in types or (exclude_archived and c["is_archived"]):
            return False
        return kind == "public_channel" or BOT_USER_ID in c["members"]

    channels = [_public(c) for c in data["channels"].values() if listed(c)]
    offset, limit = _cursor(args, 100, 1000)
    return {"channels": channels[offset:offset + limit], "response_metadata": _next(offset, limit, len(channels))}


@method("conversations.history")
def conversations_history(request: Request, state: SandboxState, data: dict[str, Any],
                          args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    if channel["is_private"] and BOT_USER_ID not in channel["members"]:
        raise SlackError("not_in_channel")
    messages = [_as_listed(m, args) for m in reversed(data["messages"].get(channel["id"], []))
                if m.get("thread_ts") in (None, m["ts"]) and _in_window(m, args)]
    offset, limit = _cursor(args, 100, 999)
    chunk = messages[offset:offset + limit]
    return {"messages": chunk, "has_more": offset + limit < len(messages),
            "response_metadata": _next(offset, limit, len(messages))}


def _in_window(message: dict[str, Any], args: dict[str, Any]) -> bool:
    """``oldest`` / ``latest`` (Unix timestamps, exclusive unless ``inclusive``), as Slack's history methods."""
    ts, inclusive = float(message["ts"]), _flag(args.get("inclusive"))
    try:
        oldest = float(args["oldest"]) if args.get("oldest") not in (None, "") else None
        latest = float(args["latest"]) if args.get("latest") not in (None, "") else None
    except ValueError:
        raise SlackError("invalid_ts_oldest" if "oldest" in args else "invalid_ts_latest") from None
    if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
        return False
    return latest is None or ts < latest or (ts == latest and inclusive)


def _as_listed(message: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """A message as the history methods list it: its ``metadata`` only with ``include_all_metadata``."""
    if "metadata" in message and not _flag(args.get("include_all_metadata")):
        return {k: v for k, v in message.items() if k != "metadata"}
    return message


@method("conversations.replies")
def conversations_replies(request: Request, state: SandboxState, data: dict[str, Any],
                          args: dict[str, Any]) -> dict[str, Any]:
    channel = _resolve_channel(data, args.get("channel"))
    ts = str(args.get("ts") or "")
    messages = data["messages"].get(channel["id"], [])
    thread = [m for m in messages if m["ts"] == ts or m.get("thread_ts") == ts]
    if not any(m["ts"] == ts for m in thread):
        raise SlackError("thread_not_found")
    thread = [_as_listed(m, args) for m in thread if m["ts"] == ts or _in_window(m, args)]
    offset, limit = _cursor(args, 100, 1000)
    return {"messages": thread[offset:offset + limit], "has_more": offset + limit < len(thread),
            "response_metadata": _next(offset, limit, len(thread))}


@router.api_route("/api/{name}", methods=["GET", "POST"])
async def api(name: str, request: Request) -> JSONResponse:
    state, data = _data(request)
    handler = METHODS.get(name)
    args = await _arguments(request)
    if handler is None:
        raise SlackError("unknown_method")
    _authenticate(request, args)
    _rate_limit(request, name)
    with state.lock:
        body = handler(request, state, data, args)
    return JSONResponse({"ok": True, **body}, headers={"X-Slack-Req-Id": secrets.token_hex(16)})


@router.post("/_sandbox/users")
async def add_user(request: Request) -> dict[str, Any]:
    """Sandbox-only (not a Slack API): add a workspace member."""
    state, data = _data(request)
    body = await request.json()
    email = str(body.get("email") or "")
    with state.lock:
        if any((u["profile"].get("email") or "").lower() == email.lower() for u in data["users"].values()):
            raise SandboxError(409, "already_exists", reason="already_exists")
        return _make_user(state, data, email, str(body.get("real_name") or email.split("@")[0]),
                          is_bot=bool(body.get("is_bot")), deleted=bool(body.get("deleted")))


@router.post("/_sandbox/team_prefs")
async def team_prefs(request: Request) -> dict[str, Any]:
    """Sandbox-only (what a workspace admin sets in Slack's settings): who may remove members from public
    (``who_can_kick_channels``) and private (``who_can_kick_groups``) channels: ``regular`` (anyone, the
    default), ``admin`` or ``owner``. Answers the preferences; a reset restores the defaults."""
    state, data = _data(request)
    body = await request.json()
    if not isinstance(body, dict):
        raise SandboxError(400, "expected a JSON object", reason="invalid_json")
    unknown = sorted(k for k in body if k not in KICK_PREFS)
    bad = sorted(k for k, v in body.items() if k in KICK_PREFS and v not in KICK_PREF_VALUES)
    if unknown or bad:
        raise SandboxError(400, f"unknown preferences {unknown}, or values not in {KICK_PREF_VALUES}: {bad}",
                           reason="invalid_prefs")
    with state.lock:
        prefs = data["team"]["prefs"] = {**data["team"]["prefs"], **body}
        return dict(prefs)


@router.post("/_sandbox/response_url/{channel_id}/{ts}")
async def response_url(channel_id: str, ts: str, request: Request) -> dict[str, Any]:
    """What Slack's interaction ``response_url`` does for a message: ``replace_original`` updates it
    (text/blocks), ``response_type: ephemeral`` is kept in ``ephemeral`` (shown only to the clicker).
    Every call is kept in ``interaction_responses``."""
    state, data = _data(request)
    body = await request.json()
    with state.lock:
        data.setdefault("interaction_responses", []).append({"channel": channel_id, "ts": ts, "body": body})
        if body.get("response_type") == "ephemeral" or not body.get("replace_original"):
            data.setdefault("ephemeral", []).append({"channel": channel_id, "ts": ts, "text": body.get("text")})
        else:
            message = next((m for m in data["messages"].get(channel_id, []) if m["ts"] == ts), None)
            if message is None:
                raise SlackError("message_not_found")
            message["text"] = str(body.get("text") or "")
            message["blocks"] = body.get("blocks") or []
            message["edited"] = {"user": BOT_USER_ID, "ts": _new_ts(data)}
    return {"ok": True}


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    state = SandboxState()  # ids for the seed only: stable, and distinct from the server's counter's range
    data.update({"team": {"id": TEAM_ID, "name": "OfficeFlow (sandbox)", "domain": TEAM_DOMAIN,
                          "prefs": dict(KICK_PREFS)},
                 "bot_user_id": BOT_USER_ID, "users": {}, "channels": {}, "messages": {}, "rate_limits": {}})
    _make_user(state, data, "", "officeflow", user_id=BOT_USER_ID, is_bot=True)
    domain = credentials.google_domain
    people = credentials.extra.get("slack_users") or [
        {"email": f"admin@{domain}", "real_name": "OfficeFlow Admin"},
        {"email": f"people.manager@{domain}", "real_name": "People Manager"}]
    for i, person in enumerate(people, start=1):
        _make_user(state, data, person["email"], person.get("real_name") or person["email"],
                   user_id=f"U0SEED{i:04d}")
    _channel(state, data, "general", channel_id="C0GENERAL0", general=True)
    _channel(state, data, "officeflow-alerts", channel_id="C0ALERTS00")
    for channel in data["channels"].values():
        channel["members"].extend(uid for uid in data["users"] if uid != BOT_USER_ID)


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random bot token; the connection is providers-slack's ``slack`` type (password = token,
    ``extra.base_url`` = the Web API base that ``SlackHook`` hands to ``WebClient``)."""
    token = "xoxb-" + "-".join(str(secrets.randbelow(10**12)) for _ in range(2)) + "-" + secrets.token_hex(12)
    credentials.extra.setdefault("slack_tokens", []).append(token)
    return {"officeflow_slack": {
        "conn_type": "slack", "password": token,
        "extra": {"base_url": f"{base_url}/slack/api/", "timeout": 30},
        "description": "Slack (sandbox): password = bot token, extra.base_url = Web API base URL"}}


service = Service("slack", router, render_error, seed)
