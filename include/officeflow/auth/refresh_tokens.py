"""Refresh tokens of the auth API: random, stored only as a SHA-256 hash, rotated on every use.

Using a revoked token (one already rotated away, or logged out) revokes every refresh token of its user:
a stolen token used after its owner refreshed is treated as a compromise.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update

from include.officeflow.store import RefreshToken, session_scope
from include.officeflow.store.models import utcnow


class RefreshTokenError(ValueError):
    """The refresh token is unknown, expired or revoked."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    from include.officeflow.settings import get_settings

    return timedelta(seconds=get_settings().auth_refresh_token_seconds)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def issue(username: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with session_scope() as session:
        session.add(RefreshToken(token_hash=_hash(token), username=username, issued_at=now,
                                 expires_at=now + _lifetime()))
    return token


def rotate(token: str) -> tuple[str, str]:
    """Spend ``token``; return (user name, the new refresh token)."""
    now = utcnow()
    with session_scope() as session:
        row = session.get(RefreshToken, _hash(token), with_for_update=True)
        if row is None:
            raise RefreshTokenError("unknown refresh token")
        username = row.username
        reused = row.revoked_at is not None
        if reused:
            # Committed when this block ends: raising inside it would roll the revocation back.
            session.execute(update(RefreshToken).where(RefreshToken.username == username,
                                                       RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
        elif _aware(row.expires_at) <= now:
            raise RefreshTokenError("refresh token expired")
        else:
            row.revoked_at = now
    if reused:
        raise RefreshTokenError("refresh token already used or revoked; every session of this user is now logged out")
    return username, issue(username)


def revoke(token: str, *, username: str | None = None) -> bool:
    """Revoke ``token`` (logout); with ``username``, only a token of that user. Whether one was revoked."""
    with session_scope() as session:
        row = session.get(RefreshToken, _hash(token))
        if row is None or row.revoked_at is not None or (username is not None and row.username != username):
            return False
        row.revoked_at = utcnow()
        return True
