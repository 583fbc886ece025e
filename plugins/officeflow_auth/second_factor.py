"""When a login needs a one-time code, and checking it: shared by every login route."""

from __future__ import annotations

from collections.abc import Iterable

from include.officeflow.auth import mfa


def role_names(user: object) -> list[str]:
    return [role.name for role in getattr(user, "roles", None) or []]


def role_requires(roles: Iterable[str]) -> bool:
    """Whether one of these roles requires MFA (``OFFICEFLOW_AUTH_MFA_REQUIRED_ROLES``)."""
    from include.officeflow.settings import get_settings

    return bool(set(get_settings().auth_mfa_required_roles).intersection(roles))


def must_enrol(username: str, roles: Iterable[str]) -> bool:
    """The user's roles require MFA and no second factor is active."""
    return role_requires(roles) and not mfa.is_enrolled(username)


def enrolled(username: str) -> bool:
    """Whether the user has an active second factor."""
    return mfa.is_enrolled(username)


def check(username: str, code: str | None) -> None:
    """Raise :class:`include.officeflow.auth.mfa.MfaError` unless the user has no second factor or
    ``code`` is a fresh TOTP code (or an unused recovery code)."""
    if mfa.is_enrolled(username):
        mfa.verify(username, code)
