"""Login throttling: too many failed logins for one user name, or from one address, in a sliding window
locks further attempts (even correct ones) until enough failures have aged out of the window.

Attempts are rows in the OfficeFlow store, so every api-server process and replica counts the same
failures. ``check`` before an attempt; ``record`` after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from include.officeflow.store import LoginAttempt, session_scope
from include.officeflow.store.models import utcnow


@dataclass(frozen=True)
class Lock:
    """Logins are refused for ``retry_after`` more seconds, because of ``reason`` ("user" or "address")."""

    retry_after: int
    reason: str


def _limits() -> tuple[int, timedelta]:
    from include.officeflow.settings import get_settings

    settings = get_settings()
    return settings.auth_login_max_failures, timedelta(seconds=settings.auth_login_window_seconds)


def _as_aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def check(username: str, source_ip: str, *, now: datetime | None = None) -> Lock | None:
    """The lock in force for this user name or address, or None when an attempt may go ahead."""
    max_failures, window = _limits()
    now = now or utcnow()
    since = now - window
    username = username.strip().lower()
    locks = []
    with session_scope() as session:
        for reason, column, value in (("user", LoginAttempt.username, username),
                                      ("address", LoginAttempt.source_ip, source_ip)):
            if not value:
                continue
            failures = session.scalars(
                select(LoginAttempt.at).where(column == value, LoginAttempt.at > since,
                                              LoginAttempt.succeeded.is_(False))
                .order_by(LoginAttempt.at.desc()).limit(max_failures)).all()
            if len(failures) >= max_failures:
                # Attempts open again when the oldest of the last ``max_failures`` failures leaves the window.
                opens_at = _as_aware(failures[-1]) + window
                locks.append(Lock(max(1, math.ceil((opens_at - now).total_seconds())), reason))
    return max(locks, key=lambda lock: lock.retry_after) if locks else None


def record(username: str, source_ip: str, succeeded: bool, *, now: datetime | None = None) -> None:
    """Store one attempt; drop attempts older than the window while at it."""
    _, window = _limits()
    now = now or utcnow()
    with session_scope() as session:
        session.add(LoginAttempt(at=now, username=username.strip().lower()[:256], source_ip=source_ip[:64],
                                 succeeded=succeeded))
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - window))


def reset(username: str | None = None, source_ip: str | None = None) -> int:
    """Forget the failures of a user name and/or address (an administrator's unlock); the number removed."""
    conditions = []
    if username:
        conditions.append(LoginAttempt.username == username.strip().lower())
    if source_ip:
        conditions.append(LoginAttempt.source_ip == source_ip)
    if not conditions:
        return 0
    with session_scope() as session:
        result = session.execute(delete(LoginAttempt).where(or_(*conditions), LoginAttempt.succeeded.is_(False)))
        return int(getattr(result, "rowcount", 0) or 0)
