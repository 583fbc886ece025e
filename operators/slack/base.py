"""The base of the Slack operators: the connection, the hook, and Slack failures classified for Airflow."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from include.officeflow.addresses import is_email_address
from include.officeflow.errors import InvalidInput
from include.officeflow.run_keys import run_key
from operators.base import ServiceOperator
from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook

#: How far before the run's start an earlier post of its task is looked for (clock skew between Slack and us).
SINCE_MARGIN_SECONDS = 300

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]{1,80}$")
CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")


@dataclass(frozen=True)
class PostOnce:
    """What keeps a task's post single (:meth:`OfficeFlowSlackHook.post_once`): the task's key, whether this try is
    a retry, and since when to look for an earlier post."""

    key: str
    retry: bool
    since: float | None

    @classmethod
    def of(cls, context: Mapping[str, Any], task_id: str, purpose: str = "") -> PostOnce | None:
        """None outside a task instance (a direct ``execute`` call): nothing will retry it. ``purpose`` tells
        apart two posts of one task."""
        ti = context.get("ti") or context.get("task_instance")
        if ti is None:
            return None
        key = hashlib.sha256(f"{run_key(context, task_id)}/{purpose}".encode()).hexdigest()[:32]
        started = getattr(context.get("dag_run"), "start_date", None) or getattr(ti, "start_date", None)
        return cls(key=key, retry=(getattr(ti, "try_number", 1) or 1) > 1,
                   since=started.timestamp() - SINCE_MARGIN_SECONDS if started is not None else None)

    @staticmethod
    def arguments(once: PostOnce | None) -> dict[str, Any]:
        """``post_once``'s keyword arguments for ``once``."""
        return {"key": None} if once is None else {"key": once.key, "retry": once.retry, "since": once.since}


class SlackOperator(ServiceOperator):
    """An operator calling Slack through :class:`OfficeFlowSlackHook`.

    :param conn_id: The Slack connection (bot token as password). Default ``officeflow_slack``.

    Subclasses run their work through ``service_call(..., in_task_retries=False)`` (the hook's client
    already waits out short rate limits), so a Slack failure fails the task for good or for a later
    retry as it deserves.
    """

    ui_color = "#ecd9f7"

    def __init__(self, *, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def hook(self) -> OfficeFlowSlackHook:
        return OfficeFlowSlackHook(slack_conn_id=self.conn_id)


def check_emails(emails: Iterable[str]) -> None:
    """:class:`InvalidInput` for the first value that is not an e-mail address."""
    for email in emails:
        if not is_email_address(email):
            raise InvalidInput(f"{email!r} is not a valid e-mail address")
