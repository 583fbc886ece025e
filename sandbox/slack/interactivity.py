"""Slack interactivity: views (modals, the App Home tab), ``users.info``, and the user's side.

Web API methods (registered with :mod:`sandbox.slack.web_api`'s method table, so they share its auth,
rate limits and error shape):

- ``views.open`` (``trigger_id`` + ``view``): the trigger id must be one the sandbox issued for a user's
  action, used within 3 s and only once (``invalid_trigger_id``, ``expired_trigger_id``,
  ``exchanged_trigger_id``); the view must be a ``modal``. ``views.publish`` (``user_id`` + a ``home``
  view, replacing the user's Home tab; ``user_not_found``). ``views.update`` (``view_id`` or
  ``external_id``, optional ``hash`` → ``hash_conflict``; ``not_found``).
  Views are checked as Slack checks them → ``invalid_arguments`` with ``response_metadata.messages``:
  ``type`` modal/home, ``title``/``submit``/``close`` plain_text of ≤ 24 characters (a modal needs a
  title, and a submit button when it has input blocks), ≤ 100 blocks that pass the message checks plus
  input blocks (plain_text ``label`` ≤ 2000, a known ``element`` type with an ``action_id`` ≤ 255,
  static selects with 1 to 100 options of text ≤ 75 and value ≤ 150), ``callback_id`` and ``external_id``
  ≤ 255 (``duplicate_external_id``), ``private_metadata`` ≤ 3000.
- ``users.info`` (``user``): the member, deleted ones included (``user_not_found``).

The user's side (sandbox-only routes under ``/slack/_sandbox``), what Slack sends to an app:

- ``POST /app`` ``{signing_secret, commands_url, interactivity_url, events_url}``: the app's settings
  (the slash command's Request URL, Interactivity's and Event Subscriptions'). A reset forgets them.
- ``POST /trigger_ids`` ``{user_id}``: a fresh trigger id, as Slack issues with each user action.
- ``POST /act/command`` ``{user_id, text?, command?, channel_id?}``: the slash command, form-encoded with
  ``trigger_id`` and ``response_url`` (``/slack/_sandbox/command_response/<id>``: what the app posts
  there is kept in ``command_responses``).
- ``POST /act/block_action`` ``{user_id, action_id, view_id | channel+ts, value?}``: a button click on a
  view or a message (``payload`` form field, ``type: block_actions``, with a trigger id).
- ``POST /act/view_submission`` ``{user_id, view_id, values: {block_id: {action_id: value}}}``: the
  modal's submit; values become Slack's ``view.state.values`` for each element type. The app's answer is
  applied as Slack applies it: ``response_action: errors`` keeps the modal open with the errors under
  ``view.errors``; ``update``/``push`` replace or stack a view; ``clear`` or an empty 200 closes it.
- ``POST /act/app_home_opened`` ``{user_id}``: the Events API ``event_callback`` for the Home tab.
- ``POST /act/url_verification``: the ``challenge`` Slack sends when the events URL is set.

Every request is signed as Slack signs (``X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:{timestamp}:{body}">`` with the app's signing secret, ``X-Slack-Request-Timestamp``) and must be
answered within Slack's 3 s: later is ``operation_timeout`` and the answer is dropped, as Slack drops
it. Each act route answers ``{status, body, elapsed_ms, error?}`` (the app's answer as Slack saw it)
plus what it sent (``trigger_id``, ``response_url``, ``payload``); every delivery is in ``deliveries``.

State (``GET /_sandbox/state/slack``): ``views`` (id → view, ``open`` false once closed), ``home``
(user id → view id), ``triggers``, ``command_responses``, ``deliveries``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import Request

from sandbox.core import SandboxError, SandboxState
from sandbox.slack.web_api import (
    BOT_ID,
    RATE_LIMITS,
    TEAM_ID,
    SlackError,
    _data,
    _user,
    method,
    router,
    validate_blocks,
)

APP_ID = "A0OFFICEFLOW"
TRIGGER_TTL = 3.0  # seconds a trigger id can open a view (Slack's limit)
ANSWER_WITHIN = 3.0  # seconds an app has to answer a command, interaction or event
MAX_VIEW_TEXT = 24  # title, submit and close
MAX_VIEW_BLOCKS = 100
MAX_ID = 255
MAX_METADATA = 3000
INPUT_ELEMENTS = frozenset({"plain_text_input", "email_text_input", "url_text_input", "number_input",
                            "static_select", "multi_static_select", "users_select", "multi_users_select",
                            "conversations_select", "channels_select", "datepicker", "timepicker",
                            "checkboxes", "radio_buttons", "external_select", "rich_text_input"})
SELECTS = frozenset({"static_select", "multi_static_select", "checkboxes", "radio_buttons"})
APP_SETTINGS = ("signing_secret", "commands_url", "interactivity_url", "events_url")

RATE_LIMITS.update({"views.open": 100, "views.publish": 100, "views.update": 100, "users.info": 100})


# --- views ----------------------------------------------------------------------------------------

def _plain_text(obj: Any, where: str, problems: list[str], max_length: int, *, required: bool = True) -> None:
    if obj is None and not required:
        return
    if not isinstance(obj, dict) or obj.get("type") != "plain_text":
        problems.append(f"[ERROR] must be a plain_text text object [json-pointer:{where}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]")
    elif len(text) > max_length:
        problems.append(f"[ERROR] must be less than {max_length + 1} characters [json-pointer:{where}/text]")


def _check_input(block: dict[str, Any], where: str, problems: list[str]) -> None:
    _plain_text(block.get("label"), f"{where}/label", problems, 2000)
    element = block.get("element")
    if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
        problems.append(f"[ERROR] unsupported type [json-pointer:{where}/element/type]")
        return
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ID):
        problems.append(f"[ERROR] must be less than {MAX_ID + 1} characters [json-pointer:{where}/element/action_id]")
    if element["type"] in SELECTS:
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 100:
            problems.append(f"[ERROR] must have 1 to 100 options [json-pointer:{where}/element/options]")
            return
        for i, option in enumerate(options):
            _plain_text((option or {}).get("text"), f"{where}/element/options/{i}/text", problems, 75)
            value = (option or {}).get("value")
            if not isinstance(value, str) or not 0 < len(value) <= 150:
                problems.append(f"[ERROR] must be 1 to 150 characters [json-pointer:{where}/element/options/{i}/value]")


def validate_view(view: Any, kind: str) -> list[str]:
    """Slack's checks of a view for ``views.open``/``update`` (``kind`` modal) or ``views.publish`` (home)."""
    if not isinstance(view, dict):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    problems: list[str] = []
    if view.get("type") != kind:
        problems.append(f"[ERROR] must be '{kind}' [json-pointer:/view/type]")
    if kind == "modal":
        _plain_text(view.get("title"), "/view/title", problems, MAX_VIEW_TEXT)
    for key in ("submit", "close"):
        _plain_text(view.get(key), f"/view/{key}", problems, MAX_VIEW_TEXT, required=False)
    blocks = view.get("blocks")
    problems += [p.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
                 for p in validate_blocks(blocks, MAX_VIEW_BLOCKS)]
    if isinstance(blocks, list):
        inputs = [(i, b) for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == "input"]
        for i, block in inputs:
            _check_input(block, f"/view/blocks/{i}", problems)
        if inputs and kind == "modal" and view.get("submit") is None:
            problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view/submit]")
    for key, limit in (("callback_id", MAX_ID), ("external_id", MAX_ID), ("private_metadata", MAX_METADATA)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:/view/{key}]")
    return problems


def _missing(field: str) -> SlackError:
    return SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {field}"]})


def _view_argument(args: dict[str, Any], kind: str) -> dict[str, Any]:
    view = args.get("view")
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] failed to parse JSON [json-pointer:/view]"]}) from None
    if view is None:
        raise _missing("view")
    problems = validate_view(view, kind)
    if problems:
        raise SlackError("invalid_arguments", response_metadata={"messages": problems})
    return dict(view)


def _store_view(state: SandboxState, data: dict[str, Any], view: dict[str, Any], user_id: str, *,
                view_id: str | None = None, root: str | None = None, previous: str | None = None) -> dict[str, Any]:
    external_id = view.get("external_id")
    views = data.setdefault("views", {})
    if external_id and any(v.get("external_id") == external_id and v["id"] != view_id and v["open"]
                           for v in views.values()):
        raise SlackError("duplicate_external_id")
    vid = view_id or f"V{state.next_id():010d}"
    stored = {"type": view["type"], "blocks": view.get("blocks", []), "callback_id": view.get("callback_id", ""),
              "private_metadata": view.get("private_metadata", ""), "external_id": external_id or "",
              "title": view.get("title"), "submit": view.get("submit"), "close": view.get("close"),
              "clear_on_close": bool(view.get("clear_on_close")), "notify_on_close": bool(view.get("notify_on_close")),
              "id": vid, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID, "user_id": user_id,
              "root_view_id": root or vid, "previous_view_id": previous, "hash": secrets.token_hex(8),
              "state": {"values": {}}, "errors": {}, "open": True}
    views[vid] = stored
    return stored


def _public_view(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("user_id", "errors", "open")}


@method("views.open")
def views_open(request: Request, state: SandboxState, data: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    trigger_id = str(args.get("trigger_id") or "")
    if not trigger_id:
        raise _missing("trigger_id")
    trigger = data.setdefault("triggers", {}).get(trigger_id)
    if trigger is None:
        raise SlackError("invalid_trigger_id")
    if trigger["used"]:
        raise SlackError("exchanged_trigger_id")
    if time.time() > trigger["expires_at"]:
        raise SlackError("expired_trigger_id")
    view = _view_argument(args, "modal")
    trigger["used"] = True
    return {"view": _public_view(_store_view(state, data, view, trigger["user"]))}


@method("views.publish")
def views_publish(request: Request, state: SandboxState, data: dict[str, Any],
                  args: dict[str, Any]) -> dict[str, Any]:
    user_id = str(args.get("user_id") or "")
    if not user_id:
        raise _missing("user_id")
    user = _user(data, user_id)
    if user is None or user["deleted"]:
        raise SlackError("user_not_found")
    view = _view_argument(args, "home")
    homes = data.setdefault("home", {})
    previous = data.get("views", {}).get(homes.get(user_id, ""))
    if previous is not None and args.get("hash") and args["hash"] != previous["hash"]:
        raise SlackError("hash_conflict")
    stored = _store_view(state, data, view, user_id, view_id=previous["id"] if previous else None)
    homes[user_id] = stored["id"]
    return {"view": _public_view(stored)}


@method("views.update")
def views_update(request: Request, state: SandboxState, data: dict[str, Any],
                 args: dict[str, Any]) -> dict[str, Any]:
    views = data.setdefault("views", {})
    view_id, external_id = str(args.get("view_id") or ""), str(args.get("external_id") or "")
    if not view_id and not external_id:
        raise _missing("view_id or external_id")
    current = views.get(view_id) if view_id else next(
        (v for v in views.values() if v["external_id"] == external_id and v["open"]), None)
    if current is None or not current["open"]:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    view = _view_argument(args, current["type"])
    stored = _store_view(state, data, view, current["user_id"], view_id=current["id"], root=current["root_view_id"],
                         previous=current["previous_view_id"])
    return {"view": _public_view(stored)}


@method("users.info")
def users_info(request: Request, state: SandboxState, data: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    user = _user(data, str(args.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user}


# --- the user's side -------------------------------------------------------------------------------

def _issue_trigger(data: dict[str, Any], user_id: str) -> str:
    trigger_id = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
    data.setdefault("triggers", {})[trigger_id] = {"user": user_id, "expires_at": time.time() + TRIGGER_TTL,
                                                   "used": False}
    return trigger_id


def _acting_user(data: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The member who acts; an unknown id is allowed (Slack sends whatever it has: the app must cope)."""
    user = _user(data, user_id)
    return user or {"id": user_id, "name": user_id, "team_id": TEAM_ID}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def _deliver(request: Request, setting: str, kind: str, *, form: dict[str, str] | None = None,
                   event: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``form`` (form-encoded: a slash command) or ``event`` (JSON: Events API) to the app's ``setting`` URL,
    signed as Slack signs; the answer as Slack saw it."""
    if form is not None:
        body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
    else:
        body, content_type = json.dumps(event).encode(), "application/json"
    state, data = _data(request)
    app = data.get("app") or {}
    url, secret = app.get(setting), app.get("signing_secret")
    if not url or not secret:
        raise SandboxError(409, f"configure the app first: POST /slack/_sandbox/app with signing_secret and {setting}",
                           reason="app_not_configured")
    headers = {**sign(secret, body), "Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    started = time.monotonic()
    outcome: dict[str, Any]
    try:
        async with httpx.AsyncClient(timeout=ANSWER_WITHIN) as client:
            response = await client.post(url, content=body, headers=headers)
        try:
            answer: Any = response.json() if response.content else None
        except ValueError:
            answer = response.text
        outcome = {"status": response.status_code, "body": answer}
        if response.status_code != 200:
            outcome["error"] = f"http_{response.status_code}"
    except httpx.TimeoutException:
        outcome = {"status": None, "body": None, "error": "operation_timeout"}
    except httpx.HTTPError as exc:
        outcome = {"status": None, "body": None, "error": f"dispatch_failed: {type(exc).__name__}"}
    outcome["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    with state.lock:
        data.setdefault("deliveries", []).append({"kind": kind, "url": url, "at": time.time(), **outcome})
    return outcome


async def _interaction(request: Request, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An interaction (a click, a view submission) sent to the app's Interactivity URL: Slack's form with the
    ``payload`` field."""
    return await _deliver(request, "interactivity_url", kind, form={"payload": json.dumps(payload)})


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SandboxError(400, "expected a JSON object", reason="invalid_json") from None
    if not isinstance(body, dict):
        raise SandboxError(400, "expected a JSON object", reason="invalid_json")
    return body


@router.post("/_sandbox/app")
async def configure_app(request: Request) -> dict[str, Any]:
    """Sandbox-only: the app's signing secret and Request URLs (a reset forgets them)."""
    state, data = _data(request)
    body = await _json_body(request)
    with state.lock:
        app = data["app"] = {**data.get("app", {}), **{k: body[k] for k in APP_SETTINGS if k in body}}
        return {k: v for k, v in app.items() if k != "signing_secret"}


@router.post("/_sandbox/trigger_ids")
async def trigger_ids(request: Request) -> dict[str, Any]:
    """Sandbox-only: a trigger id for ``user_id``, as Slack attaches one to each user action."""
    state, data = _data(request)
    body = await _json_body(request)
    with state.lock:
        return {"trigger_id": _issue_trigger(data, str(body.get("user_id") or ""))}


@router.post("/_sandbox/command_response/{command_id}")
async def command_response(command_id: str, request: Request) -> dict[str, Any]:
    """A slash command's ``response_url``: what the app answers later (kept in ``command_responses``)."""
    state, data = _data(request)
    body = await _json_body(request)
    with state.lock:
        if command_id not in data.setdefault("command_responses", {}):
            raise SandboxError(404, "unknown response_url", reason="expired_url")
        data["command_responses"][command_id].append(body)
    return {"ok": True}


@router.post("/_sandbox/act/command")
async def act_command(request: Request) -> dict[str, Any]:
    """Sandbox-only: the user types a slash command."""
    state, data = _data(request)
    body = await _json_body(request)
    user_id = str(body.get("user_id") or "")
    with state.lock:
        user = _acting_user(data, user_id)
        trigger_id = _issue_trigger(data, user_id)
        command_id = f"{state.next_id():09d}"
        data.setdefault("command_responses", {})[command_id] = []
    response_url = f"{str(request.base_url).rstrip('/')}/slack/_sandbox/command_response/{command_id}"
    form = {"token": "deprecated-verification-token", "team_id": TEAM_ID, "team_domain": "officeflow-sandbox",
            "channel_id": str(body.get("channel_id") or "C0GENERAL0"), "channel_name": "general",
            "user_id": user_id, "user_name": user.get("name", user_id),
            "command": str(body.get("command") or "/officeflow"),
            "text": str(body.get("text") or ""), "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": trigger_id}
    outcome = await _deliver(request, "commands_url", "command", form=form)
    return {**outcome, "trigger_id": trigger_id, "response_url": response_url, "command_id": command_id}


def _element(view: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    for block in view.get("blocks", []):
        if block.get("block_id") == block_id and block.get("type") == "input":
            element: dict[str, Any] = block["element"]
            if element.get("action_id") == action_id:
                return element
    raise SandboxError(400, f"the view has no input {block_id}/{action_id}", reason="no_such_input")


def _state_value(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """What Slack puts in ``view.state.values`` for ``value`` typed or picked in ``element``."""
    kind = element["type"]
    options = {o["value"]: o for o in element.get("options") or []}
    if kind in ("static_select", "radio_buttons"):
        return {"type": kind, "selected_option": options.get(value) if value is not None else None}
    if kind in ("multi_static_select", "checkboxes"):
        return {"type": kind, "selected_options": [options[v] for v in value or [] if v in options]}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": list(value or [])}
    if kind == "users_select":
        return {"type": kind, "selected_user": value}
    if kind == "datepicker":
        return {"type": kind, "selected_date": value}
    return {"type": kind, "value": value}


def _view_payload_values(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for block in view.get("blocks", []):  # every input is in the state, empty ones too
        if block.get("type") == "input":
            element = block["element"]
            state.setdefault(block["block_id"], {})[element["action_id"]] = _state_value(element, None)
    for block_id, actions in values.items():
        for action_id, value in dict(actions).items():
            state.setdefault(block_id, {})[action_id] = _state_value(_element(view, block_id, action_id), value)
    return state


def _open_view(data: dict[str, Any], view_id: str) -> dict[str, Any]:
    view = data.get("views", {}).get(view_id)
    if view is None or not view["open"]:
        raise SandboxError(404, f"no open view {view_id}", reason="view_not_found")
    return dict(view)


def _apply_view_answer(state: SandboxState, data: dict[str, Any], view: dict[str, Any], answer: Any) -> None:
    """What Slack does with the app's answer to a view_submission."""
    stored = data["views"][view["id"]]
    action = answer.get("response_action") if isinstance(answer, dict) else None
    if action == "errors":
        stored["errors"] = dict(answer.get("errors") or {})
    elif action in ("update", "push"):
        problems = validate_view(answer.get("view"), "modal")
        if problems:
            stored["errors"] = {"": "; ".join(problems)}  # Slack shows "We had some trouble connecting"
            return
        if action == "update":
            _store_view(state, data, answer["view"], view["user_id"], view_id=view["id"], root=view["root_view_id"])
        else:
            _store_view(state, data, answer["view"], view["user_id"], root=view["root_view_id"], previous=view["id"])
    elif action == "clear":
        for other in data["views"].values():
            if other["root_view_id"] == view["root_view_id"]:
                other["open"] = False
    else:
        stored["open"] = False


@router.post("/_sandbox/act/view_submission")
async def act_view_submission(request: Request) -> dict[str, Any]:
    """Sandbox-only: the user submits an open modal with ``values``."""
    state, data = _data(request)
    body = await _json_body(request)
    user_id = str(body.get("user_id") or "")
    with state.lock:
        view = _open_view(data, str(body.get("view_id") or ""))
        if view["type"] != "modal":
            raise SandboxError(400, "only a modal is submitted", reason="not_a_modal")
        values = _view_payload_values(view, dict(body.get("values") or {}))
        data["views"][view["id"]]["state"] = {"values": values}
        data["views"][view["id"]]["errors"] = {}
        trigger_id = _issue_trigger(data, user_id)
        public = {**_public_view(view), "state": {"values": values}}
        payload = {"type": "view_submission", "team": {"id": TEAM_ID, "domain": "officeflow-sandbox"},
                   "user": {**{k: v for k, v in _acting_user(data, user_id).items() if k in ("id", "name", "team_id")},
                            "username": _acting_user(data, user_id).get("name", user_id)},
                   "api_app_id": APP_ID, "token": "deprecated-verification-token", "trigger_id": trigger_id,
                   "view": public, "response_urls": [], "is_enterprise_install": False}
    outcome = await _interaction(request, "view_submission", payload)
    with state.lock:
        if outcome["status"] == 200:
            _apply_view_answer(state, data, view, outcome["body"])
        else:
            data["views"][view["id"]]["errors"] = {"": "We had some trouble connecting. Try again?"}
        after = dict(data["views"][view["id"]])
    return {**outcome, "trigger_id": trigger_id, "payload": payload, "view": after}


@router.post("/_sandbox/act/block_action")
async def act_block_action(request: Request) -> dict[str, Any]:
    """Sandbox-only: the user clicks the button ``action_id`` in a view (``view_id``) or a message."""
    state, data = _data(request)
    body = await _json_body(request)
    user_id, action_id = str(body.get("user_id") or ""), str(body.get("action_id") or "")
    with state.lock:
        if body.get("view_id"):
            view = _open_view(data, str(body["view_id"]))
            blocks, container = view["blocks"], {"type": "view", "view_id": view["id"]}
            extra: dict[str, Any] = {"view": _public_view(view)}
        else:
            channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
            message = next((m for m in data["messages"].get(channel, []) if m["ts"] == ts), None)
            if message is None:
                raise SandboxError(404, f"no message {channel}/{ts}", reason="message_not_found")
            blocks = message.get("blocks") or []
            container = {"type": "message", "message_ts": ts, "channel_id": channel}
            base = str(request.base_url).rstrip("/")
            extra = {"message": message, "channel": {"id": channel},
                     "response_url": f"{base}/slack/_sandbox/response_url/{channel}/{ts}"}
        found = next(((b, e) for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])
                      if e.get("action_id") == action_id), None)
        if found is None:
            raise SandboxError(400, f"no button {action_id!r} there", reason="no_such_action")
        block, element = found
        trigger_id = _issue_trigger(data, user_id)
        user = _acting_user(data, user_id)
        action = {**element, "block_id": block.get("block_id", ""), "action_ts": f"{time.time():.6f}"}
        if body.get("value") is not None:
            action["value"] = str(body["value"])
        payload = {"type": "block_actions", "team": {"id": TEAM_ID, "domain": "officeflow-sandbox"},
                   "user": {"id": user_id, "username": user.get("name", user_id), "team_id": TEAM_ID},
                   "api_app_id": APP_ID, "trigger_id": trigger_id, "container": container, "actions": [action],
                   **extra}
    outcome = await _interaction(request, "block_actions", payload)
    return {**outcome, "trigger_id": trigger_id, "payload": payload}


@router.post("/_sandbox/act/app_home_opened")
async def act_app_home_opened(request: Request) -> dict[str, Any]:
    """Sandbox-only: the user opens the app's Home tab (an Events API ``event_callback``)."""
    state, data = _data(request)
    body = await _json_body(request)
    user_id = str(body.get("user_id") or "")
    with state.lock:
        home = data.get("views", {}).get(data.get("home", {}).get(user_id, ""))
        now = time.time()
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": f"D{user_id[1:]}",
                                 "tab": str(body.get("tab") or "home"), "event_ts": f"{now:.6f}"}
        if home is not None:
            event["view"] = _public_view(home)
        envelope = {"token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID,
                    "event": event, "type": "event_callback", "event_id": f"Ev{state.next_id():010d}",
                    "event_time": int(now), "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT00001",
                                                                "is_bot": True}]}
    outcome = await _deliver(request, "events_url", "event", event=envelope)
    return {**outcome, "payload": envelope}


@router.post("/_sandbox/act/url_verification")
async def act_url_verification(request: Request) -> dict[str, Any]:
    """Sandbox-only: Slack's handshake when the events Request URL is saved: the app must echo ``challenge``."""
    challenge = secrets.token_urlsafe(24)
    outcome = await _deliver(request, "events_url", "url_verification", event={
        "token": "deprecated-verification-token", "challenge": challenge, "type": "url_verification"})
    answer = outcome["body"]
    echoed = answer.get("challenge") if isinstance(answer, dict) else answer
    return {**outcome, "verified": outcome["status"] == 200 and echoed == challenge}
