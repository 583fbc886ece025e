"""The base of the Slack operators: the connection, the hook, and Slack failures classified for Airflow."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from include.officeflow.addresses import is_email_address
from include.officeflow.errors import InvalidInput
from operators.base import ServiceOperator
from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]{1,80}$")
CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")


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
