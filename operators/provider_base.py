"""The base of operators that call one of several SaaS providers (identity, calendar).

A :class:`operators.base.ServiceOperator` (OfficeFlow's retry defaults, in-task retries, failures
classified for Airflow) that checks the provider name and names the provider in every failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from operators.base import ServiceOperator

T = TypeVar("T")


class ProviderOperator(ServiceOperator):
    """An operator family serving several providers of one kind (``provider=…``).

    :param provider: one of :attr:`providers` (templated in the subclasses that say so).
    :param conn_id: the Airflow connection; None: the provider's default.
    """

    #: The provider names this operator family accepts.
    providers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, provider: str, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if provider not in self.providers and "{{" not in provider:
            raise ValueError(f"provider must be one of {', '.join(self.providers)}, got {provider!r}")
        self.provider = provider
        self.conn_id = conn_id

    def service_call(self, describe: str, call: Callable[[], T], *, in_task_retries: bool = True) -> T:
        return super().service_call(f"{self.provider}: {describe}", call, in_task_retries=in_task_retries)
