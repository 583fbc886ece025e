"""TOTP MFA on the real store (include/officeflow/auth/mfa.py): enrolment, codes accepted once (replay and older
codes refused through the last time step), clock drift of one step, recovery codes that work once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from include.officeflow.auth import mfa
from include.officeflow.auth.mfa import MfaError
from include.officeflow.store import MfaEnrolment, session_scope
from tests.harness.store import truncate

T0 = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)  # a step boundary (multiple of 30 s)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(store_url, monkeypatch) -> Clock:
    truncate(store_url, "mfa_enrolments")
    fake = Clock()
    monkeypatch.setattr(mfa, "utcnow", fake)
    return fake


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrol(username: str, clock: Clock) -> tuple[str, list[str]]:
    enrolment = mfa.begin(username)
    codes = mfa.confirm(username, code_at(enrolment.secret, clock.now))
    return enrolment.secret, codes


def test_enrolment_gives_a_secret_uri_and_qr_code_and_activates_with_a_first_code(clock, settings_env):
    settings_env.setenv("OFFICEFLOW_AUTH_MFA_ISSUER", "OfficeFlow Test")
    enrolment = mfa.begin("ada")
    assert enrolment.uri.startswith("otpauth://totp/OfficeFlow%20Test:ada?secret=" + enrolment.secret)
    assert enrolment.qr_svg.startswith("<svg") and "</svg>" in enrolment.qr_svg
    assert not mfa.is_enrolled("ada")  # begun, not active
    with session_scope() as session:
        stored = session.get(MfaEnrolment, "ada").secret_encrypted
    assert enrolment.secret not in stored  # encrypted at rest

    with pytest.raises(MfaError, match="wrong code"):
        mfa.confirm("ada", "000000" if code_at(enrolment.secret, clock.now) != "000000" else "111111")
    assert not mfa.is_enrolled("ada")
    codes = mfa.confirm("ada", code_at(enrolment.secret, clock.now))
    assert mfa.is_enrolled("ada")
    assert len(codes) == mfa.RECOVERY_CODES == len(set(codes))
    assert mfa.remaining_recovery_codes("ada") == 10


def test_confirm_without_setup_and_setup_while_active_are_refused(clock):
    with pytest.raises(MfaError, match="call setup first"):
        mfa.confirm("ada", "123456")
    enrol("ada", clock)
    with pytest.raises(MfaError, match="already active"):
        mfa.begin("ada")
    with pytest.raises(MfaError, match="already active"):
        mfa.confirm("ada", "123456")


def test_a_code_is_accepted_once_and_older_codes_never_again(clock):
    secret, _ = enrol("ada", clock)
    with pytest.raises(MfaError, match="already used"):  # the enrolment's code is spent
        mfa.verify("ada", code_at(secret, clock.now))
    clock.advance(30)
    fresh = code_at(secret, clock.now)
    mfa.verify("ada", f" {fresh} ")
    with pytest.raises(MfaError, match="already used"):
        mfa.verify("ada", fresh)  # replay
    clock.advance(30)
    with pytest.raises(MfaError, match="already used"):
        mfa.verify("ada", fresh)  # a step older than the window allows, and used
    mfa.verify("ada", code_at(secret, clock.now))


def test_one_step_of_clock_drift_either_way_is_accepted(clock):
    secret, _ = enrol("ada", clock)
    clock.advance(90)
    mfa.verify("ada", code_at(secret, clock.now - timedelta(seconds=30)))  # the phone is slow
    clock.advance(120)
    mfa.verify("ada", code_at(secret, clock.now + timedelta(seconds=30)))  # the phone is fast
    clock.advance(120)
    with pytest.raises(MfaError, match="wrong one-time code"):
        mfa.verify("ada", code_at(secret, clock.now - timedelta(seconds=90)))
    with pytest.raises(MfaError, match="wrong one-time code"):
        mfa.verify("ada", code_at(secret, clock.now + timedelta(seconds=90)))


def test_a_newer_code_spends_the_older_ones_of_the_window(clock):
    secret, _ = enrol("ada", clock)
    clock.advance(120)
    newer, older = code_at(secret, clock.now + timedelta(seconds=30)), code_at(secret, clock.now)
    mfa.verify("ada", newer)
    with pytest.raises(MfaError, match="already used"):
        mfa.verify("ada", older)


def test_missing_or_wrong_codes_and_users_without_mfa(clock):
    secret, _ = enrol("ada", clock)
    clock.advance(60)
    for missing in (None, "", "   "):
        with pytest.raises(MfaError, match="send the one-time code"):
            mfa.verify("ada", missing)
    right = code_at(secret, clock.now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(MfaError, match="wrong one-time code"):
        mfa.verify("ada", wrong)
    with pytest.raises(MfaError, match="wrong one-time code"):
        mfa.verify("ada", "not-a-code")
    with pytest.raises(MfaError, match="not active"):
        mfa.verify("grace", right)


def test_a_recovery_code_works_once_in_any_spelling(clock):
    _, codes = enrol("ada", clock)
    mfa.verify("ada", codes[0])
    assert mfa.remaining_recovery_codes("ada") == 9
    with pytest.raises(MfaError, match="wrong one-time code"):
        mfa.verify("ada", codes[0])
    mfa.verify("ada", " " + codes[1].upper().replace("-", "") + " ")
    assert mfa.remaining_recovery_codes("ada") == 8
    with pytest.raises(MfaError):
        mfa.verify("grace", codes[2])  # a code is its user's only


def test_reset_removes_the_second_factor_and_allows_a_new_enrolment(clock):
    enrol("ada", clock)
    assert mfa.reset("ada") is True
    assert not mfa.is_enrolled("ada") and mfa.remaining_recovery_codes("ada") == 0
    assert mfa.reset("ada") is False
    _, codes = enrol("ada", clock)
    assert mfa.is_enrolled("ada") and len(codes) == 10


def test_restarting_an_unconfirmed_enrolment_replaces_the_secret(clock):
    assert mfa.pending("ada") is None
    first = mfa.begin("ada")
    assert mfa.pending("ada") == first  # the enrolment page shows the same QR code again
    second = mfa.begin("ada")
    assert first.secret != second.secret and mfa.pending("ada") == second
    with pytest.raises(MfaError, match="wrong code"):
        mfa.confirm("ada", code_at(first.secret, clock.now))
    mfa.confirm("ada", code_at(second.secret, clock.now))
    assert mfa.pending("ada") is None
