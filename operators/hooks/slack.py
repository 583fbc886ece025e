"""Slack hook: providers-slack's :class:`SlackHook` with OfficeFlow's rate limits, error mapping and lookups.

Connection ``officeflow_slack`` (type ``slack``: password = bot token, ``extra.base_url`` optional; the
sandbox points it at ``<sandbox>/slack/api/``).

- **Rate limits**: the ``WebClient`` gets :func:`retry_handlers`: one retry of a dropped connection, and
  :class:`BoundedRateLimitRetryHandler`, slack_sdk's ``RateLimitErrorRetryHandler`` (sleeps
  ``Retry-After``) with a bounded number of retries and a cap on the wait: a longer wait goes back to
  Airflow as a retryable error instead of blocking the worker.
- **Errors**: :meth:`OfficeFlowSlackHook.call_method` answers the response data or raises
  :mod:`include.officeflow.errors` classes: auth errors (``invalid_auth``, ``not_authed`` …, or no
  connection) -> :class:`AuthError` naming the connection; 429 / ``ratelimited`` -> :class:`RateLimited`;
  5xx, ``internal_error``, ``fatal_error`` …, network errors -> :class:`Unavailable`; ``users_not_found``,
  ``user_not_found``, ``channel_not_found`` -> :class:`NotFound`; ``name_taken``, ``already_in_channel``,
  ``already_archived`` -> :class:`Conflict`; every other Slack error -> :class:`InvalidInput` (permanent
  for the same input). Error codes a caller expects (``allow=``) come back as data instead.
- **Lookups**, cached per hook: :meth:`~OfficeFlowSlackHook.user_id_by_email` (``users.lookupByEmail``)
  and :meth:`~OfficeFlowSlackHook.channel_by_name` (``conversations.list``, paged and cached like
  :meth:`SlackHook.get_channel_id`, whose cache it fills too).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.providers.slack.hooks.slack import SlackHook
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from include.officeflow import errors
from include.officeflow.addresses import is_email_address
from include.officeflow.integration_metrics import external_call

DEFAULT_CONN_ID = "officeflow_slack"
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
                         "no_permission", "missing_scope", "not_allowed_token_type"})
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
#: Slack errors worth retrying later (besides rate limits and HTTP 5xx).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "team_added_to_org"})
NOT_FOUND_ERRORS = frozenset({"users_not_found", "user_not_found", "channel_not_found"})
CONFLICT_ERRORS = frozenset({"name_taken", "already_in_channel", "already_archived"})


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` from slack_sdk's response headers (values are lists in retry handlers)."""
    for key, value in dict(headers or {}).items():
        if key.lower() == "retry-after" and value:
            return errors.parse_retry_after(str(value[0] if isinstance(value, list | tuple) else value))
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
        wait = _retry_after(response.headers)
        return wait is None or wait <= self.max_wait


class ConnectionRetryButNotPosts(ConnectionErrorRetryHandler):
    """slack_sdk's dropped-connection retry, except for ``chat.postMessage``: a post that reached Slack before the
    connection dropped would be posted twice. The poster looks for it first instead
    (:meth:`OfficeFlowSlackHook.find_post`)."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if request.url.rstrip("/").endswith("/chat.postMessage"):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


def retry_handlers(max_rate_limit_retries: int = 3, max_wait: float = 60.0) -> list[RetryHandler]:
    """The ``WebClient`` retry handlers of OfficeFlow's Slack calls (a dropped connection once, but never a post;
    bounded 429s)."""
    return [ConnectionRetryButNotPosts(max_retry_count=1),
            BoundedRateLimitRetryHandler(max_retry_count=max_rate_limit_retries, max_wait=max_wait)]


class OfficeFlowSlackHook(SlackHook):
    """:class:`SlackHook` on the ``officeflow_slack`` connection with bounded rate-limit retries, Slack
    errors mapped onto :mod:`include.officeflow.errors`, and cached user and channel lookups.

    :param slack_conn_id: The Slack connection (bot token as password). Default ``officeflow_slack``.
    :param retry_handlers: slack_sdk retry handlers; default :func:`retry_handlers`.
    :param kwargs: Everything else :class:`SlackHook` accepts (``base_url``, ``timeout``, ``proxy`` …).

    .. code-block:: python

        hook = OfficeFlowSlackHook()
        user_id = hook.user_id_by_email("ada@example.com")
        hook.call_method("chat.postMessage", channel="#general", text="Welcome!")
    """

    default_conn_name = DEFAULT_CONN_ID
    #: ``conversations.list`` page size of :meth:`channel_by_name` (Slack allows up to 1000).
    channels_page_size = 1000

    def __init__(self, *, slack_conn_id: str = DEFAULT_CONN_ID, retry_handlers: list[RetryHandler] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(slack_conn_id=slack_conn_id,
                         retry_handlers=retry_handlers if retry_handlers is not None else _default_handlers(),
                         **kwargs)
        self._user_ids: dict[str, str] = {}
        self._channels: dict[str, dict[str, Any]] = {}

    def call_method(self, api_method: str, *, allow: Collection[str] = (), **kwargs: Any) -> dict[str, Any]:
        """``client.<api_method>(**kwargs)`` (slack_sdk's own argument encoding, e.g. ``chat.postMessage``):
        the response data. Slack error codes in ``allow`` are answered as data (``{"ok": False, "error":
        code, …}``); every other failure raises a :class:`~include.officeflow.errors.ServiceError`."""
        with external_call("slack"):
            return self._call_method(api_method, allow, kwargs)

    def _call_method(self, api_method: str, allow: Collection[str], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            response = getattr(self.client, api_method.replace(".", "_"))(**kwargs)
        except AirflowNotFoundException as exc:
            raise errors.AuthError(f"Slack connection {self.slack_conn_id!r} is not defined or has no token: "
                                   f"{exc}") from None
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") in allow:
                return dict(data)
            raise self.error_for(api_method, exc) from None
        except OSError as exc:  # the network, after ConnectionErrorRetryHandler's retry
            raise errors.Unavailable(f"Slack {api_method} failed: {type(exc).__name__}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def error_for(self, api_method: str, exc: SlackApiError) -> errors.ServiceError:
        """The :mod:`include.officeflow.errors` class of a Slack failure (``ok: false`` or an HTTP error)."""
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        status = int(exc.response.status_code)
        code = str(data.get("error") or f"HTTP {status}")
        message = f"Slack {api_method} failed: {code}"
        if code in AUTH_ERRORS or status in (401, 403):
            return errors.AuthError(f"{message} (check the connection {self.slack_conn_id!r})")
        if status == 429 or code in RATE_LIMIT_ERRORS:
            return errors.RateLimited(message, _retry_after(exc.response.headers))
        if status >= 500 or code in TRANSIENT_ERRORS:
            return errors.Unavailable(message)
        if code in NOT_FOUND_ERRORS:
            return errors.NotFound(message)
        if code in CONFLICT_ERRORS:
            return errors.Conflict(message)
        return errors.InvalidInput(message)

    def user_id_by_email(self, email: str) -> str:
        """The id of the workspace member with this e-mail address (``users.lookupByEmail``; cached);
        :class:`errors.NotFound` when there is none (or they are deactivated)."""
        key = email.strip().lower()
        if key not in self._user_ids:
            if not is_email_address(email):
                raise errors.InvalidInput(f"{email!r} is not a valid e-mail address")
            try:
                data = self.call_method("users.lookupByEmail", email=email)
            except errors.NotFound:
                raise errors.NotFound(f"no Slack user has the e-mail address {email!r}") from None
            self._user_ids[key] = str(data["user"]["id"])
        return self._user_ids[key]

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        """The conversation named ``name`` (``#`` optional; archived ones included, private ones only
        when the bot is a member), or None. Pages through ``conversations.list`` until it is found,
        caching every channel seen, as :meth:`SlackHook.get_channel_id` does."""
        name = name.lstrip("#")
        cursor: str | None = None
        while name not in self._channels:
            page = self.call_method("conversations.list", types="public_channel,private_channel",
                                    limit=self.channels_page_size, cursor=cursor)
            for channel in page.get("channels", []):
                self._channels[str(channel["name"])] = dict(channel)
                self._channels_mapping[str(channel["name"])] = str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return self._channels.get(name)

    def post_once(self, *, key: str | None, retry: bool = False, since: float | None = None,
                  **message: Any) -> dict[str, Any]:
        """``chat.postMessage`` of ``message`` at most once for ``key`` (a task's key: the same on its retries).

        The post carries ``key`` in its metadata. On a ``retry``, and when the post's answer never came (5xx,
        dropped connection: it may have been posted), the earlier post is looked for (:meth:`find_post`, since
        ``since``) and answered instead. ``key`` None posts plainly. Answers ``{"channel", "ts", "found"}``."""
        if key is None:
            posted = self.call_method("chat.postMessage", **message)
            return {"channel": posted["channel"], "ts": posted["ts"], "found": False}
        channel, thread_ts = str(message["channel"]), message.get("thread_ts")
        earlier = self.find_post(channel, key, oldest=since, thread_ts=thread_ts) if retry else None
        if earlier is None:
            try:
                posted = self.call_method("chat.postMessage", **message, metadata=post_metadata(key))
                return {"channel": posted["channel"], "ts": posted["ts"], "found": False}
            except errors.Unavailable:
                earlier = self.find_post(channel, key, oldest=since, thread_ts=thread_ts)
                if earlier is None:
                    raise
        return {"channel": earlier["channel"], "ts": earlier["ts"], "found": True}

    def find_post(self, channel: str, key: str, *, oldest: float | None = None,
                  thread_ts: str | None = None, max_pages: int = 5) -> dict[str, Any] | None:
        """The message posted with :func:`post_metadata` ``(key)`` in ``channel`` (an id, or ``#name``), in the
        thread ``thread_ts`` when given, since ``oldest`` (a Unix time); None when there is none. Reads
        ``conversations.history`` (or ``.replies``) with ``include_all_metadata``, newest first, at most
        ``max_pages`` pages of 200."""
        if channel.startswith("#"):
            found = self.channel_by_name(channel)
            if found is None:
                return None
            channel = str(found["id"])
        method = "conversations.replies" if thread_ts else "conversations.history"
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
        if thread_ts:
            args["ts"] = thread_ts
        if oldest is not None:
            args["oldest"] = f"{oldest:.6f}"
        cursor: str | None = None
        for _ in range(max_pages):
            page = self.call_method(method, **args, **({"cursor": cursor} if cursor else {}))
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                if (metadata.get("event_type") == POST_EVENT
                        and (metadata.get("event_payload") or {}).get("key") == key):
                    return {**message, "channel": channel}
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None


#: The message metadata event type of OfficeFlow's posts (what :meth:`OfficeFlowSlackHook.find_post` looks for).
POST_EVENT = "officeflow_post"


def post_metadata(key: str) -> dict[str, Any]:
    """``chat.postMessage``'s ``metadata`` marking a post with its idempotency ``key``."""
    return {"event_type": POST_EVENT, "event_payload": {"key": key}}


def _default_handlers() -> list[RetryHandler]:
    return retry_handlers()
