"""Slack messages: a Block Kit template or plain text to a channel, a person's DM, or a thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from include.officeflow.errors import InvalidInput
from operators.slack.base import PostOnce, SlackOperator
from operators.slack.templates import render_message

if TYPE_CHECKING:
    from airflow.sdk import Context


class SlackMessageOperator(SlackOperator):
    """Post a Block Kit message from ``include/templates/slack/<template>.json.j2`` (or plain ``text``)
    to ``channel`` or to ``user_email`` (a DM), optionally as a reply in ``thread_ts``.

    :param template: Template name under ``include/templates/slack/`` (e.g. ``welcome_channel_intro``);
        exactly one of ``template`` and ``text``. (templated)
    :param variables: Values the template uses; a missing one fails the task before any call. (templated)
    :param text: Plain message text instead of a template. (templated)
    :param channel: Channel id or ``#name``; exactly one of ``channel`` and ``user_email``. (templated)
    :param user_email: A workspace member's e-mail address: the message goes to their DM
        (``users.lookupByEmail`` → ``conversations.open``). (templated)
    :param thread_ts: Post as a reply in this thread (a message ``ts``). (templated)
    :param conn_id: The Slack connection. Default ``officeflow_slack``.

    Returns ``{"channel": <id>, "ts": <message ts>, "thread_ts": …}`` (``channel`` + ``ts`` are what a
    later reply in the thread needs).

    Posted once per task instance: the message carries the task's key in its metadata, and a retry (or a post
    whose answer was lost) finds the earlier message instead of posting it again.

    .. code-block:: python

        SlackMessageOperator(task_id="intro", template="welcome_channel_intro", channel="#general",
                             variables={"first_name": "{{ params.first_name }}", ...})
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

    def execute(self, context: Context) -> dict[str, Any]:
        target = self.channel if self.user_email is None else self.user_email
        once = PostOnce.of(context, self.task_id)
        return self.service_call(f"Posting to {target}", lambda: self._post(once), in_task_retries=False)

    def _post(self, once: PostOnce | None) -> dict[str, Any]:
        text, blocks = self._message()
        kwargs: dict[str, Any] = {"channel": self._channel_id(), "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        if self.thread_ts:
            kwargs["thread_ts"] = str(self.thread_ts)
        posted = self.hook.post_once(**PostOnce.arguments(once), **kwargs)
        self.log.info("%s to %s (ts %s)", "found the earlier post" if posted["found"] else "posted",
                      posted["channel"], posted["ts"])
        return {"channel": posted["channel"], "ts": posted["ts"], "thread_ts": self.thread_ts or None}

    def _message(self) -> tuple[str, list[dict[str, Any]]]:
        if self.template is not None:
            text, blocks = render_message(self.template, dict(self.variables))
        else:
            text, blocks = str(self.text), []
        if not text.strip():
            raise InvalidInput("the message text is empty")
        return text, blocks

    def _channel_id(self) -> str:
        """The channel as given, or the DM with ``user_email`` (opened if needed)."""
        if self.user_email is None:
            return str(self.channel)
        user_id = self.hook.user_id_by_email(self.user_email)
        return str(self.hook.call_method("conversations.open", users=[user_id])["channel"]["id"])
