"""Which module emulates which service: each defines ``service`` (a :class:`sandbox.core.Service`, mounted
under ``/<name>``) and ``provision_credentials`` (its part of the credentials and its Airflow connection)."""

from __future__ import annotations

import importlib
from types import ModuleType

SERVICE_MODULES: dict[str, str] = {
    "google": "sandbox.google",
    "microsoft": "sandbox.microsoft",
    "okta": "sandbox.okta",
    "ses": "sandbox.email.ses",
    "sendgrid": "sandbox.email.sendgrid",
    "slack": "sandbox.slack",
    "openai": "sandbox.openai",
    "bamboohr": "sandbox.bamboohr",
    "workday": "sandbox.workday",
}
#: Every service, in mounting order.
SERVICE_NAMES: tuple[str, ...] = tuple(SERVICE_MODULES)


def service_module(name: str) -> ModuleType:
    """The module emulating the service ``name``."""
    try:
        return importlib.import_module(SERVICE_MODULES[name])
    except KeyError:
        raise ValueError(f"unknown sandbox service {name!r} (one of {', '.join(SERVICE_NAMES)})") from None
