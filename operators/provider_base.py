"""The base of operators that call one of several SaaS providers (identity, calendar).

It sets OfficeFlow's retry defaults (3 retries, exponential backoff from 30 s), checks the provider
name, and runs each provider call with in-task retries (``with_retries``: 429 waits ``Retry-After``,
5xx backs off) while classifying what is left: retryable failures raise ``AirflowException`` (Airflow
retries the task), permanent ones (bad credentials, refused input) ``AirflowFailException``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.officeflow.identity import IdentityError, with_retries


class ProviderOperator(BaseOperator):
    #: The provider names this operator family accepts.
    providers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, provider: str, conn_id: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("retry_delay", timedelta(seconds=30))
        kwargs.setdefault("retry_exponential_backoff", True)
        super().__init__(**kwargs)
        if provider not in self.providers and "{{" not in provider:
            raise ValueError(f"provider must be one of {', '.join(self.providers)}, got {provider!r}")
        self.provider = provider
        self.conn_id = conn_id

    def _call(self, describe: str, call: Callable[..., Any]) -> Any:
        """One provider call with in-task retries; what still fails is classified for Airflow."""
        try:
            return with_retries(call, describe=f"{self.provider}: {describe}")
        except IdentityError as exc:
            message = f"{self.provider}: {describe} failed: {exc}"
            if exc.retryable:
                raise AirflowException(message) from exc
            raise AirflowFailException(message) from exc
