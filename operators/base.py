"""The base of OfficeFlow's operators that call an external service (identity, calendar, Slack, email).

One retry policy for all of them: the task retries 3 times with exponential backoff from 30 s
(``default_args`` of the DAGs may override), each service call retries inside the task
(:func:`include.officeflow.errors.with_retries`: 429 waits ``Retry-After``, 5xx backs off), and what
still fails is classified for Airflow: retryable errors raise ``AirflowException`` (Airflow retries the
task), permanent ones (bad credentials, refused input, missing object, conflict) ``AirflowFailException``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.officeflow.errors import ServiceError, with_retries

T = TypeVar("T")

#: The task-level retry defaults of every operator that calls an external service.
TASK_RETRIES = {"retries": 3, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}


def for_airflow(exc: ServiceError, message: str) -> AirflowException:
    """The Airflow exception for a service failure: retryable, or failing the task for good."""
    return AirflowException(message) if exc.retryable else AirflowFailException(message)


class ServiceOperator(BaseOperator):
    """An operator whose work is calls to an external service, with OfficeFlow's retry policy."""

    def __init__(self, **kwargs: Any) -> None:
        for key, value in TASK_RETRIES.items():
            kwargs.setdefault(key, value)
        super().__init__(**kwargs)

    def service_call(self, describe: str, call: Callable[[], T], *, in_task_retries: bool = True) -> T:
        """One call with in-task retries (unless the client retries itself); what still fails is
        classified for Airflow with ``describe`` in the message."""
        try:
            return with_retries(call, describe=describe) if in_task_retries else call()
        except ServiceError as exc:
            raise for_airflow(exc, f"{describe} failed: {exc}") from exc
