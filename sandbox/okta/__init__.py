"""Okta: the Management API's users, lifecycle, sessions and groups (``/okta/api/v1/...``); see
:mod:`sandbox.okta.api`."""

from sandbox.okta.api import provision_credentials, seed, service

__all__ = ["provision_credentials", "seed", "service"]
