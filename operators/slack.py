"""Slack: Block Kit messages from templates, onboarding channels, and workflow notifications.

Everything goes through providers-slack's :class:`SlackHook` (slack_sdk's ``WebClient``) and the
Airflow connection ``officeflow_slack`` (type ``slack``: password = bot token, ``extra.base_url``
optional; the sandbox points it at ``<sandbox>/slack/api/``).

- :class:`SlackMessageOperator`: renders ``include/templates/slack/<template>.json.j2`` (Jinja,
  StrictUndefined; a JSON object ``{"text": fallback, "blocks": [...]}``) and posts it to a channel, to
  a person found by e-mail (``users.lookupByEmail`` → ``conversations.open`` → DM), or into a thread.
- :class:`CreateChannelOperator`: creates a channel (``name_taken`` → the existing one is reused),
  invites people by e-mail (``already_in_channel`` is fine) and sets the topic; safe to re-run.
- :class:`ArchiveChannelOperator`: archives a channel by id or name; ``already_archived`` is fine.
- :class:`OfficeFlowSlackNotifier` (``officeflow_failure_notifier``, ``officeflow_success_notifier``):
  providers-slack's ``SlackNotifier`` naming the workflow, run, task and an Airflow UI link; usable
  as ``on_failure_callback`` / ``on_success_callback``.

Rate limits: the hook's ``WebClient`` gets a :class:`BoundedRateLimitRetryHandler`, slack_sdk's
``RateLimitErrorRetryHandler`` (sleeps ``Retry-After``) with a bounded number of retries and a cap on
the wait: a longer wait goes back to Airflow as a retryable error instead of blocking the worker.
Slack's permanent errors (``invalid_auth``, ``channel_not_found``, ``invalid_blocks`` …) fail the
task without Airflow retries (:class:`AirflowFailException`); transient ones (``ratelimited``,
``internal_error``, 5xx) raise :class:`AirflowException` so Airflow retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.providers.slack.hooks.slack import SlackHook
from airflow.providers.slack.notifications.slack import SlackNotifier
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.hitl import HITLUser
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from include.officeflow.templating import TEMPLATES_DIR

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_CONN_ID = "officeflow_slack"
DEFAULT_ALERT_CHANNEL = "#officeflow-alerts"
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]{1,80}$")
CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Slack errors worth retrying later; every other ``error`` code is permanent for the same input.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "team_added_to_org"})
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
                         "no_permission", "missing_scope", "not_allowed_token_type"})


# --- rate limits --------------------------------------------------------------------------------

def _retry_after(response: HttpResponse) -> float | None:
    for key, values in response.headers.items():
        if key.lower() == "retry-after" and values:
            try:
                return float(values[0])
            except ValueError:
                return None
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits ``Retry-After`` + up to 1 s jitter) for at most
    ``max_retry_count`` retries, and only when ``Retry-After`` ≤ ``max_wait`` seconds: a longer wait
    is left to Airflow's retry (the task fails retryably) rather than blocking a worker slot."""

    def __init__(self, max_retry_count: int = 3, max_wait: float = 60.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response)
        return wait is None or wait <= self.max_wait


def retry_handlers(max_rate_limit_retries: int = 3, max_wait: float = 60.0) -> list[RetryHandler]:
    return [ConnectionErrorRetryHandler(max_retry_count=1),
            BoundedRateLimitRetryHandler(max_retry_count=max_rate_limit_retries, max_wait=max_wait)]


def slack_hook(conn_id: str = DEFAULT_CONN_ID) -> SlackHook:
    return SlackHook(slack_conn_id=conn_id, retry_handlers=retry_handlers())


class SlackMethodError(AirflowException):
    """A Slack Web API call answered ``ok: false`` (or an HTTP error) after the in-call retries."""

    def __init__(self, method: str, error: str, status: int, conn_id: str) -> None:
        hint = f" (check the connection {conn_id!r})" if error in AUTH_ERRORS else ""
        super().__init__(f"Slack {method} failed: {error}{hint}")
        self.method, self.error, self.status = method, error, status

    @property
    def transient(self) -> bool:
        return self.error in TRANSIENT_ERRORS or self.status == 429 or self.status >= 500

    def for_airflow(self) -> AirflowException:
        """Retryable errors as they are; permanent ones as :class:`AirflowFailException`."""
        return self if self.transient else AirflowFailException(str(self))


def call(hook: SlackHook, method: str, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> dict[str, Any]:
    """``hook.client.<method>(**kwargs)`` (slack_sdk's own argument encoding); the response data, or
    :class:`SlackMethodError`."""
    try:
        client_method = getattr(hook.client, method.replace(".", "_"))
        response = client_method(**kwargs)
    except AirflowNotFoundException as exc:
        raise AirflowFailException(f"Slack connection {conn_id!r} is not defined or has no token: {exc}") from exc
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        status = exc.response.status_code
        raise SlackMethodError(method, str(data.get("error") or f"HTTP {status}"), status, conn_id) from None
    data = response.data
    return data if isinstance(data, dict) else {}


# --- templates ----------------------------------------------------------------------------------

class Raw(str):
    """A value the template inserts without mrkdwn escaping (URLs in ``url`` fields): ``{{ x | raw }}``."""


def _escape(value: Any) -> str:
    """Every ``{{ }}`` output: mrkdwn-escaped (``&``, ``<``, ``>``, as Slack requires for user text)
    unless :class:`Raw`, then escaped as the inside of a JSON string."""
    if value is None:
        return ""
    text = str(value)
    if not isinstance(value, Raw):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return json.dumps(text, ensure_ascii=False)[1:-1]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "slack")), undefined=StrictUndefined,
                      autoescape=False, finalize=_escape)  # noqa: S701 - JSON-escaped by finalize
    env.filters["raw"] = lambda value: Raw(str(value))
    return env


class SlackTemplateError(ValueError):
    pass


def render_message(template: str, variables: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """``include/templates/slack/<template>.json.j2`` → (fallback text, blocks)."""
    try:
        rendered = _environment().get_template(f"{template}.json.j2").render(**variables)
    except TemplateError as exc:
        raise SlackTemplateError(f"Slack template {template!r}: {exc.__class__.__name__}: {exc}") from exc
    try:
        message = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise SlackTemplateError(f"Slack template {template!r} did not render to JSON: {exc}") from exc
    text, blocks = message.get("text"), message.get("blocks", [])
    if not isinstance(text, str) or not text.strip():
        raise SlackTemplateError(f"Slack template {template!r} has no fallback \"text\"")
    if not isinstance(blocks, list) or len(blocks) > 50 or not all(isinstance(b, dict) and b.get("type")
                                                                   for b in blocks):
        raise SlackTemplateError(f"Slack template {template!r}: \"blocks\" must be a list of ≤ 50 blocks")
    return text, blocks


# --- operators ----------------------------------------------------------------------------------

class _SlackOperator(BaseOperator):
    ui_color = "#ecd9f7"

    def __init__(self, *, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("retry_delay", timedelta(seconds=30))
        kwargs.setdefault("retry_exponential_backoff", True)
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self._hook: SlackHook | None = None

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        if self._hook is None:
            self._hook = slack_hook(self.conn_id)
        return call(self._hook, method, self.conn_id, **kwargs)

    def execute(self, context: Context) -> Any:
        try:
            return self.execute_step(context)
        except SlackMethodError as exc:
            raise exc.for_airflow() from None

    def execute_step(self, context: Context) -> Any:
        raise NotImplementedError

    def _user_id(self, email: str) -> str:
        try:
            return str(self._call("users.lookupByEmail", email=email)["user"]["id"])
        except SlackMethodError as exc:
            if exc.error == "users_not_found":
                raise AirflowFailException(f"no Slack user has the e-mail address {email!r}") from None
            raise

    def _find_channel(self, name: str) -> dict[str, Any] | None:
        cursor = None
        while True:
            page = self._call("conversations.list", types="public_channel,private_channel", limit=1000,
                              cursor=cursor)
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def _check_email(email: str) -> None:
    if not EMAIL_RE.match(email):
        raise AirflowFailException(f"{email!r} is not a valid e-mail address")


class SlackMessageOperator(_SlackOperator):
    """Post a Block Kit message from ``include/templates/slack/<template>.json.j2`` (or plain ``text``)
    to ``channel`` (id or ``#name``) or to ``user_email`` (a DM), optionally as a reply in ``thread_ts``.

    Returns ``{"channel": <id>, "ts": <message ts>, "thread_ts": …}`` (``channel`` + ``ts`` are what a
    later reply in the thread needs).
    """

    template_fields: Sequence[str] = ("template", "variables", "text", "channel", "user_email", "thread_ts")

    def __init__(self, *, template: str | None = None, variables: dict[str, Any] | None = None,
                 text: str | None = None, channel: str | None = None, user_email: str | None = None,
                 thread_ts: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (template is None) == (text is None):
            raise ValueError("give exactly one of template or text")
        if (channel is None) == (user_email is None):
            raise ValueError("give exactly one of channel or user_email")
        self.template, self.variables, self.text = template, variables or {}, text
        self.channel, self.user_email, self.thread_ts = channel, user_email, thread_ts

    def execute_step(self, context: Context) -> dict[str, Any]:
        if self.template is not None:
            try:
                text, blocks = render_message(self.template, dict(self.variables))
            except SlackTemplateError as exc:
                raise AirflowFailException(str(exc)) from exc
        else:
            text, blocks = str(self.text), []
        if not text.strip():
            raise AirflowFailException("the message text is empty")
        if self.user_email is not None:
            _check_email(self.user_email)
            user_id = self._user_id(self.user_email)
            channel = str(self._call("conversations.open", users=[user_id])["channel"]["id"])
        else:
            channel = str(self.channel)
        kwargs: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        if self.thread_ts:
            kwargs["thread_ts"] = str(self.thread_ts)
        posted = self._call("chat.postMessage", **kwargs)
        self.log.info("posted to %s (ts %s)", posted["channel"], posted["ts"])
        return {"channel": posted["channel"], "ts": posted["ts"], "thread_ts": self.thread_ts or None}


def onboarding_channel_name(first_name: str, last_name: str, prefix: str = "onboarding-") -> str:
    """``onboarding-ada-lovelace``: lowercase letters, digits, ``-`` and ``_`` only, ≤ 80 characters."""
    slug = re.sub(r"[^a-z0-9_]+", "-", f"{first_name} {last_name}".lower()).strip("-")
    return (prefix + slug)[:80].rstrip("-")


class CreateChannelOperator(_SlackOperator):
    """Create channel ``name`` (or reuse it when it exists and is not archived), invite ``invite_emails``
    and set ``topic``. Re-running gives the same channel and the same members. Returns
    ``{"channel_id", "name", "created", "invited", "already_members"}``."""

    template_fields: Sequence[str] = ("name", "invite_emails", "topic")

    def __init__(self, *, name: str, is_private: bool = False, invite_emails: Sequence[str] = (),
                 topic: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name, self.is_private, self.invite_emails, self.topic = name, is_private, invite_emails, topic

    def execute_step(self, context: Context) -> dict[str, Any]:
        name = str(self.name)
        if not CHANNEL_NAME_RE.match(name):
            raise AirflowFailException(f"invalid Slack channel name {name!r}: 1-80 lowercase letters, digits, "
                                       "'-' or '_'")
        emails = [str(e) for e in self.invite_emails]
        for email in emails:
            _check_email(email)
        if self.topic is not None and len(str(self.topic)) > 250:
            raise AirflowFailException("the channel topic is longer than 250 characters")
        created = True
        try:
            channel = self._call("conversations.create", name=name, is_private=self.is_private)["channel"]
        except SlackMethodError as exc:
            if exc.error != "name_taken":
                raise
            found = self._find_channel(name)
            if found is None:
                raise AirflowFailException(f"Slack channel #{name} exists but is not visible to the bot "
                                           "(a private channel it is not in?)") from None
            if found.get("is_archived"):
                raise AirflowFailException(f"Slack channel #{name} exists but is archived") from None
            channel, created = found, False
        channel_id = str(channel["id"])
        invited, already = [], []
        for email in emails:
            user_id = self._user_id(email)
            try:
                self._call("conversations.invite", channel=channel_id, users=[user_id])
                invited.append(email)
            except SlackMethodError as exc:
                if exc.error != "already_in_channel":
                    raise
                already.append(email)
        if self.topic is not None and (channel.get("topic") or {}).get("value") != self.topic:
            self._call("conversations.setTopic", channel=channel_id, topic=str(self.topic))
        self.log.info("channel #%s (%s): %s, invited %s", name, channel_id, "created" if created else "reused",
                      invited)
        return {"channel_id": channel_id, "name": name, "created": created, "invited": invited,
                "already_members": already}


class ArchiveChannelOperator(_SlackOperator):
    """Archive ``channel`` (id, or name with or without ``#``). Already archived is success; a channel
    that does not exist is success with ``missing_ok`` (the default: offboarding may run twice).
    Returns ``{"channel_id", "archived", "already_archived"}``."""

    template_fields: Sequence[str] = ("channel",)

    def __init__(self, *, channel: str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel, self.missing_ok = channel, missing_ok

    def execute_step(self, context: Context) -> dict[str, Any]:
        target = str(self.channel).lstrip("#")
        channel_id: str | None = target if CHANNEL_ID_RE.match(target) else None
        if channel_id is None:
            if not CHANNEL_NAME_RE.match(target):
                raise AirflowFailException(f"invalid Slack channel {self.channel!r}")
            found = self._find_channel(target)
            channel_id = str(found["id"]) if found else None
        if channel_id is None:
            return self._missing(target)
        try:
            self._call("conversations.archive", channel=channel_id)
        except SlackMethodError as exc:
            if exc.error == "already_archived":
                return {"channel_id": channel_id, "archived": True, "already_archived": True}
            if exc.error == "channel_not_found":
                return self._missing(target)
            raise
        return {"channel_id": channel_id, "archived": True, "already_archived": False}

    def _missing(self, target: str) -> dict[str, Any]:
        if not self.missing_ok:
            raise AirflowFailException(f"Slack channel {target!r} not found")
        self.log.warning("Slack channel %r not found; nothing to archive", target)
        return {"channel_id": None, "archived": False, "already_archived": False}


# --- workflow notifications ---------------------------------------------------------------------

def airflow_ui_url(dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None,
                   try_number: int | None = None) -> str:
    """The Airflow UI page of a run or task instance (``[api] base_url``, i.e. AIRFLOW__API__BASE_URL)."""
    from airflow.configuration import conf

    base = str(conf.get("api", "base_url", fallback="http://localhost:8080/")).rstrip("/")
    url = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    if task_id:
        url += f"/tasks/{quote(task_id, safe='')}"
        if map_index is not None and map_index >= 0:
            url += f"/mapped/{map_index}"
        if try_number:
            url += f"?try_number={try_number}"
    return url


def workflow_variables(context: Any, status: str) -> dict[str, Any]:
    """What the ``workflow_failed`` template needs, from a task- or DAG-level callback context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run, dag = context.get("dag_run"), context.get("dag")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None)
                 or "unknown")
    run_id = str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id") or "")
    task_id = str(getattr(ti, "task_id", "") or "") if ti is not None else ""
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    exception = context.get("exception")
    if exception is not None and not isinstance(exception, str):
        error = f"{type(exception).__name__}: {exception}"
    else:
        error = str(exception or context.get("reason") or "")
    return {"status": status, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
            "error": error, "url": airflow_ui_url(dag_id, run_id, task_id, map_index, try_number)}


class OfficeFlowSlackNotifier(SlackNotifier):
    """``SlackNotifier`` with OfficeFlow's message (``workflow_failed`` template): workflow, run, task,
    error and a link to the task instance in the Airflow UI. ``status`` is ``"failed"`` or ``"succeeded"``.

    Only ``channel`` and ``slack_conn_id`` are Jinja-templated (the message is built in :meth:`notify`,
    so an error text with ``{{`` in it is never rendered as a template)."""

    template_fields: Sequence[str] = ("channel", "slack_conn_id")

    def __init__(self, *, status: str = "failed", channel: str = DEFAULT_ALERT_CHANNEL,
                 slack_conn_id: str = DEFAULT_CONN_ID, template: str = "workflow_failed", **kwargs: Any) -> None:
        if status not in ("failed", "succeeded"):
            raise ValueError("status must be 'failed' or 'succeeded'")
        kwargs.setdefault("retry_handlers", retry_handlers())
        kwargs.setdefault("username", "OfficeFlow")
        super().__init__(slack_conn_id=slack_conn_id, channel=channel, **kwargs)
        self.status, self.template = status, template

    def _prepare(self, context: Any) -> None:
        self.text, blocks = render_message(self.template, workflow_variables(context, self.status))
        self.blocks = blocks

    def notify(self, context: Any) -> None:
        self._prepare(context)
        try:
            super().notify(context)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            raise SlackMethodError("chat.postMessage", str(data.get("error") or exc.response.status_code),
                                   exc.response.status_code, self.slack_conn_id) from None

    async def async_notify(self, context: Any) -> None:
        self._prepare(context)
        await super().async_notify(context)


#: ``on_failure_callback=officeflow_failure_notifier`` on every OfficeFlow DAG (posts to #officeflow-alerts).
officeflow_failure_notifier = OfficeFlowSlackNotifier(status="failed")
officeflow_success_notifier = OfficeFlowSlackNotifier(status="succeeded")


# --- interactive approvals ----------------------------------------------------------------------

#: ``action_id`` of the two buttons; the gateway's ``/officeflow/slack/interactions`` maps them to options.
APPROVE_ACTION_ID = "officeflow_approve"
REJECT_ACTION_ID = "officeflow_reject"
MAX_BUTTON_VALUE = 2000  # Slack's limit on a button's ``value``


def approval_blocks(subject: str, body: str | None, value: str, ui_url: str) -> list[dict[str, Any]]:
    """Block Kit of an approval request: subject, details, Approve/Reject buttons (both carrying
    ``value``: which task instance, and who may decide) and a link to the Airflow UI."""
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": subject[:150]}}]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": esc(body)[:3000]}})
    blocks.append({"type": "actions", "block_id": "officeflow_approval", "elements": [
        {"type": "button", "action_id": APPROVE_ACTION_ID, "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT_ACTION_ID, "style": "danger", "value": value,
         "text": {"type": "plain_text", "text": "Reject"}}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"Or decide in <{ui_url}|Airflow>."}]})
    return blocks


class SlackApprovalOperator(ApprovalOperator):
    """An :class:`ApprovalOperator` whose request is also posted to Slack with Approve/Reject buttons.

    ``approvers`` are Slack users' e-mail addresses (resolved with ``users.lookupByEmail`` when the
    task starts waiting); only they can decide from Slack (others get an ephemeral "not allowed").
    A click reaches ``POST /officeflow/slack/interactions`` and is recorded as the HITL response, with
    ``responded_by`` = the approver's e-mail; the Airflow UI's "required actions" page works too.

    ``ui_approvers``: Airflow user ids that may also decide in the UI. When given, the approvers'
    e-mails and these ids become the HITL ``assigned_users`` (Airflow then refuses anyone else); when
    empty, any Airflow user allowed to respond to the DAG's HITL tasks can decide in the UI.
    """

    template_fields: Collection[str] = (*ApprovalOperator.template_fields, "approvers", "channel")

    def __init__(self, *, approvers: Sequence[str], channel: str, ui_approvers: Sequence[str] = (),
                 conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        if not approvers:
            raise ValueError("approvers must name at least one Slack user e-mail")
        assigned: list[HITLUser] | None = None
        if ui_approvers:
            assigned = [HITLUser(id=str(e).lower(), name=str(e)) for e in approvers]
            assigned += [HITLUser(id=str(u), name=str(u)) for u in ui_approvers]
        kwargs.setdefault("assigned_users", assigned)
        super().__init__(**kwargs)
        self.approvers, self.channel, self.ui_approvers, self.conn_id = list(approvers), channel, ui_approvers, conn_id

    def execute(self, context: Context) -> Any:
        self.notifiers = [*self.notifiers, _SlackApprovalRequest(self)]
        return super().execute(context)


class _SlackApprovalRequest(BaseNotifier):
    """Called by :meth:`HITLOperator.execute` once the HITL request is stored: posts the buttons
    (the operator's fields are already rendered)."""

    def __init__(self, operator: SlackApprovalOperator) -> None:
        super().__init__()
        self.operator = operator

    def notify(self, context: Context) -> None:
        op, ti = self.operator, context["ti"]
        hook = slack_hook(op.conn_id)
        try:
            ids: dict[str, str] = {}
            for email in [str(e) for e in op.approvers]:
                _check_email(email)
                try:
                    ids[str(call(hook, "users.lookupByEmail", op.conn_id, email=email)["user"]["id"])] = email.lower()
                except SlackMethodError as exc:
                    if exc.error == "users_not_found":
                        raise AirflowFailException(f"no Slack user has the e-mail address {email!r}") from None
                    raise
            value = json.dumps({"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
                                "map_index": ti.map_index, "approvers": ids}, separators=(",", ":"))
            if len(value) > MAX_BUTTON_VALUE:
                raise AirflowFailException("too many approvers for one Slack button (value over 2000 characters)")
            url = op.generate_link_to_ui(task_instance=ti)
            blocks = approval_blocks(str(op.subject), str(op.body) if op.body else None, value, url)
            posted = call(hook, "chat.postMessage", op.conn_id, channel=str(op.channel),
                          text=f"Approval needed: {op.subject}", blocks=blocks)
        except SlackMethodError as exc:
            raise exc.for_airflow() from None
        op.log.info("approval request posted to %s (ts %s) for %s", posted["channel"], posted["ts"],
                    sorted(ids.values()))
