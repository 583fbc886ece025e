"""Refresh tokens on the real store (include/officeflow/auth/refresh_tokens.py): stored hashed, rotated on every
use, expired after their lifetime; reusing a spent token revokes every token of its user."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from include.officeflow.auth import refresh_tokens
from include.officeflow.auth.refresh_tokens import RefreshTokenError
from include.officeflow.store import RefreshToken, session_scope
from tests.harness.store import truncate


@pytest.fixture
def tokens(store_url):
    truncate(store_url, "refresh_tokens")
    yield
    truncate(store_url, "refresh_tokens")


def live(username: str) -> int:
    with session_scope() as session:
        return len(list(session.scalars(select(RefreshToken).where(RefreshToken.username == username,
                                                                   RefreshToken.revoked_at.is_(None)))))


@pytest.mark.usefixtures("tokens")
def test_tokens_are_random_and_stored_only_as_a_hash():
    token = refresh_tokens.issue("ada")
    assert len(token) >= 40 and token != refresh_tokens.issue("ada")
    with session_scope() as session:
        row = session.get(RefreshToken, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None and row.username == "ada"
        assert not any(token in str(value) for value in (row.token_hash, row.username))


@pytest.mark.usefixtures("tokens")
def test_rotation_spends_the_token_and_hands_out_a_new_one():
    first = refresh_tokens.issue("ada")
    username, second = refresh_tokens.rotate(first)
    assert username == "ada" and second != first
    username, _ = refresh_tokens.rotate(second)
    assert username == "ada" and live("ada") == 1
    with pytest.raises(RefreshTokenError, match="unknown"):
        refresh_tokens.rotate("x" * 43)


@pytest.mark.usefixtures("tokens")
def test_reusing_a_spent_token_revokes_every_token_of_its_user():
    stolen = refresh_tokens.issue("ada")
    _, current = refresh_tokens.rotate(stolen)   # the owner refreshed
    other_device = refresh_tokens.issue("ada")
    grace = refresh_tokens.issue("grace")
    with pytest.raises(RefreshTokenError, match="already used or revoked"):
        refresh_tokens.rotate(stolen)            # the thief comes later
    assert live("ada") == 0                      # committed, although the call failed
    for token in (current, other_device):
        with pytest.raises(RefreshTokenError, match="already used or revoked"):
            refresh_tokens.rotate(token)
    assert refresh_tokens.rotate(grace)[0] == "grace"  # other users keep theirs


@pytest.mark.usefixtures("tokens")
def test_expired_tokens_are_refused(settings_env, monkeypatch):
    settings_env.setenv("OFFICEFLOW_AUTH_REFRESH_TOKEN_SECONDS", "60")
    token = refresh_tokens.issue("ada")
    monkeypatch.setattr(refresh_tokens, "utcnow", lambda: datetime.now(UTC) + timedelta(seconds=61))
    with pytest.raises(RefreshTokenError, match="expired"):
        refresh_tokens.rotate(token)


@pytest.mark.usefixtures("tokens")
def test_revoke_is_logout():
    token = refresh_tokens.issue("ada")
    assert refresh_tokens.revoke(token) is True
    assert refresh_tokens.revoke(token) is False
    assert refresh_tokens.revoke("never-issued-token") is False
    grace = refresh_tokens.issue("grace")
    assert refresh_tokens.revoke(grace, username="ada") is False  # not ada's to revoke
    assert refresh_tokens.rotate(grace)[0] == "grace"
    with pytest.raises(RefreshTokenError):
        refresh_tokens.rotate(token)
