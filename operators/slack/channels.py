"""Slack channels: create (or reuse) a channel with its members and topic; remove members; archive it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from include.officeflow.errors import Conflict, InvalidInput, NotFound
from operators.slack.base import CHANNEL_ID_RE, CHANNEL_NAME_RE, SlackOperator, check_emails

if TYPE_CHECKING:
    from airflow.sdk import Context

    from operators.hooks.slack import OfficeFlowSlackHook

MAX_TOPIC = 250  # Slack's limit on a channel topic


def onboarding_channel_name(first_name: str, last_name: str, prefix: str = "onboarding-") -> str:
    """``onboarding-ada-lovelace``: lowercase letters, digits, ``-`` and ``_`` only, ≤ 80 characters."""
    slug = re.sub(r"[^a-z0-9_]+", "-", f"{first_name} {last_name}".lower()).strip("-")
    return (prefix + slug)[:80].rstrip("-")


class CreateChannelOperator(SlackOperator):
    """Create channel ``name`` (or reuse it when it exists and is not archived), invite ``invite_emails``
    and set ``topic``. Re-running gives the same channel and the same members.

    :param name: The channel name: 1-80 lowercase letters, digits, ``-`` or ``_``. (templated)
    :param is_private: Create a private channel. Default False.
    :param invite_emails: Workspace members to invite, by e-mail address (``already_in_channel`` is
        fine). (templated)
    :param topic: The channel topic (≤ 250 characters); set only when it differs. (templated)
    :param conn_id: The Slack connection. Default ``officeflow_slack``.

    Returns ``{"channel_id", "name", "created", "invited", "already_members"}``.

    .. code-block:: python

        CreateChannelOperator(task_id="channel", name="onboarding-ada-lovelace",
                              invite_emails=["ada@example.com"], topic="Ada's onboarding")
    """

    template_fields: Sequence[str] = ("name", "invite_emails", "topic")

    def __init__(self, *, name: str, is_private: bool = False, invite_emails: Sequence[str] = (),
                 topic: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name, self.is_private, self.invite_emails, self.topic = name, is_private, invite_emails, topic

    def execute(self, context: Context) -> dict[str, Any]:
        return self.service_call(f"Setting up Slack channel #{self.name}", self._set_up, in_task_retries=False)

    def _set_up(self) -> dict[str, Any]:
        name, emails = str(self.name), [str(e) for e in self.invite_emails]
        self._check(name, emails)
        channel, created = self._create_or_reuse(name)
        channel_id = str(channel["id"])
        invited, already = self._invite(channel_id, emails)
        if self.topic is not None and (channel.get("topic") or {}).get("value") != self.topic:
            self.hook.call_method("conversations.setTopic", channel=channel_id, topic=str(self.topic))
        self.log.info("channel #%s (%s): %s, invited %s", name, channel_id, "created" if created else "reused",
                      invited)
        return {"channel_id": channel_id, "name": name, "created": created, "invited": invited,
                "already_members": already}

    def _check(self, name: str, emails: list[str]) -> None:
        """Everything wrong with the input, before any call."""
        if not CHANNEL_NAME_RE.match(name):
            raise InvalidInput(f"invalid Slack channel name {name!r}: 1-80 lowercase letters, digits, '-' or '_'")
        check_emails(emails)
        if self.topic is not None and len(str(self.topic)) > MAX_TOPIC:
            raise InvalidInput(f"the channel topic is longer than {MAX_TOPIC} characters")

    def _create_or_reuse(self, name: str) -> tuple[dict[str, Any], bool]:
        """(the channel, whether it was created): ``name_taken`` means it exists, so it is looked up."""
        answer = self.hook.call_method("conversations.create", name=name, is_private=self.is_private,
                                       allow={"name_taken"})
        if answer.get("ok", True):
            return dict(answer["channel"]), True
        found = self.hook.channel_by_name(name)
        if found is None:
            raise NotFound(f"Slack channel #{name} exists but is not visible to the bot (a private channel it "
                           "is not in?)")
        if found.get("is_archived"):
            raise Conflict(f"Slack channel #{name} exists but is archived")
        return found, False

    def _invite(self, channel_id: str, emails: list[str]) -> tuple[list[str], list[str]]:
        """(invited, already members), one person at a time so one member does not stop the others."""
        invited: list[str] = []
        already: list[str] = []
        for email in emails:
            user_id = self.hook.user_id_by_email(email)
            answer = self.hook.call_method("conversations.invite", channel=channel_id, users=[user_id],
                                           allow={"already_in_channel"})
            (invited if answer.get("ok", True) else already).append(email)
        return invited, already


class ArchiveChannelOperator(SlackOperator):
    """Archive ``channel``. Already archived is success; a channel that does not exist is success with
    ``missing_ok`` (the default: offboarding may run twice).

    :param channel: Channel id, or name with or without ``#``. (templated)
    :param missing_ok: Succeed when there is no such channel. Default True.
    :param conn_id: The Slack connection. Default ``officeflow_slack``.

    Returns ``{"channel_id", "archived", "already_archived"}``.

    .. code-block:: python

        ArchiveChannelOperator(task_id="archive", channel="#onboarding-ada-lovelace")
    """

    template_fields: Sequence[str] = ("channel",)

    def __init__(self, *, channel: str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel, self.missing_ok = channel, missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        return self.service_call(f"Archiving Slack channel {self.channel}", self._archive, in_task_retries=False)

    def _archive(self) -> dict[str, Any]:
        target = str(self.channel).lstrip("#")
        channel_id = _channel_id(self.hook, target)
        if channel_id is None:
            return self._missing(target)
        answer = self.hook.call_method("conversations.archive", channel=channel_id,
                                       allow={"already_archived", "channel_not_found"})
        if answer.get("error") == "channel_not_found":
            return self._missing(target)
        return {"channel_id": channel_id, "archived": True, "already_archived": not answer.get("ok", True)}

    def _missing(self, target: str) -> dict[str, Any]:
        if not self.missing_ok:
            raise NotFound(f"Slack channel {target!r} not found")
        self.log.warning("Slack channel %r not found; nothing to archive", target)
        return {"channel_id": None, "archived": False, "already_archived": False}


class RemoveFromChannelOperator(SlackOperator):
    """Remove ``emails`` from ``channel`` (``conversations.kick``), as leaving a team does. Re-running removes
    nobody twice: someone who is not in the channel (Slack's ``not_in_channel``, also after a retry whose
    answer was lost) is left as they are.

    Nothing to remove is success, logged: a person with no Slack account (``users.lookupByEmail`` answers
    ``users_not_found``, as it does for deactivated ones), and with ``missing_ok`` a channel that does not
    exist (any more) or that the bot cannot see.

    :param channel: Channel id, or name with or without ``#``. (templated)
    :param emails: Workspace members to remove, by e-mail address. (templated)
    :param missing_ok: Succeed when there is no such channel. Default True.
    :param conn_id: The Slack connection. Default ``officeflow_slack``.

    Returns ``{"channel_id", "removed", "not_members", "no_slack_account"}`` (e-mail addresses; ``channel_id``
    None when the channel is missing). Slack's other refusals fail the task for good: ``restricted_action``
    (the workspace lets only admins remove members), ``cant_kick_from_general``, ``cant_kick_self``.

    .. code-block:: python

        RemoveFromChannelOperator(task_id="leave_channel", channel="#team-platform", emails=["ada@example.com"])
    """

    template_fields: Sequence[str] = ("channel", "emails")

    def __init__(self, *, channel: str, emails: Sequence[str], missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel, self.emails, self.missing_ok = channel, emails, missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        return self.service_call(f"Removing members from Slack channel {self.channel}", self._remove,
                                 in_task_retries=False)

    def _remove(self) -> dict[str, Any]:
        target, emails = str(self.channel).lstrip("#"), [str(e) for e in self.emails]
        check_emails(emails)
        channel_id = _channel_id(self.hook, target)
        result: dict[str, Any] = {"channel_id": channel_id, "removed": [], "not_members": [], "no_slack_account": []}
        if channel_id is None:
            return self._missing(target, result)
        for email in emails:
            try:
                user_id = self.hook.user_id_by_email(email)
            except NotFound:
                self.log.info("%s has no Slack account; nothing to remove from %s", email, target)
                result["no_slack_account"].append(email)
                continue
            answer = self.hook.call_method("conversations.kick", channel=channel_id, user=user_id,
                                           allow={"not_in_channel", "channel_not_found"})
            if answer.get("error") == "channel_not_found":  # deleted since it was looked up
                return self._missing(target, {**result, "channel_id": None})
            if answer.get("ok", True):
                result["removed"].append(email)
            else:
                self.log.info("%s is not in %s; nothing to remove", email, target)
                result["not_members"].append(email)
        self.log.info("channel %s (%s): removed %s", target, channel_id, result["removed"])
        return result

    def _missing(self, target: str, result: dict[str, Any]) -> dict[str, Any]:
        if not self.missing_ok:
            raise NotFound(f"Slack channel {target!r} not found")
        self.log.warning("Slack channel %r not found (or not visible to the bot); nobody to remove", target)
        return result


def _channel_id(hook: OfficeFlowSlackHook, target: str) -> str | None:
    """``target`` when it is a channel id; a name's id (None when there is no such channel, or the bot does not
    see it)."""
    if CHANNEL_ID_RE.match(target):
        return target
    if not CHANNEL_NAME_RE.match(target):
        raise InvalidInput(f"invalid Slack channel {target!r}")
    found = hook.channel_by_name(target)
    return str(found["id"]) if found else None
