"""Provider adapters: one module per HR system, each implementing :class:`base.Adapter`."""

from __future__ import annotations

import functools

from plugins.officeflow_gateway.adapters.base import (
    Adapter,
    Delivery,
    InboundEvent,
    PayloadError,
    VerificationError,
)

__all__ = [
    "ADAPTER_NAMES",
    "Adapter",
    "Delivery",
    "InboundEvent",
    "PayloadError",
    "VerificationError",
    "get_adapter",
]

ADAPTER_NAMES = ("bamboohr", "workday", "generic")


@functools.cache
def get_adapter(name: str) -> Adapter:
    """The adapter registered under ``name`` (imported lazily, one stateless instance per process);
    ``KeyError`` for an unknown one."""
    if name == "bamboohr":
        from plugins.officeflow_gateway.adapters.bamboohr import BambooHRAdapter

        return BambooHRAdapter()
    if name == "workday":
        from plugins.officeflow_gateway.adapters.workday import WorkdayAdapter

        return WorkdayAdapter()
    if name == "generic":
        from plugins.officeflow_gateway.adapters.generic import StandardWebhooksAdapter

        return StandardWebhooksAdapter()
    raise KeyError(name)
