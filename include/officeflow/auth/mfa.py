"""TOTP second factor (RFC 6238, 30 s steps, 6 digits) for database users.

Enrolment: ``begin`` stores a new secret (Fernet-encrypted with Airflow's key) and returns the
``otpauth://`` URI and its QR code; ``confirm`` with a first valid code activates it and returns ten
one-time recovery codes (only their hashes are kept). A code is accepted once: the last time step used
is stored, so a replayed (or older) code is refused. A recovery code works once in place of a code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno

from include.officeflow.store import MfaEnrolment, session_scope
from include.officeflow.store.models import utcnow

RECOVERY_CODES = 10
VALID_WINDOW = 1  # accept the previous and the next 30 s step too (clock drift)


class MfaError(ValueError):
    """A code was wrong, replayed or missing, or the enrolment is not in the state the call needs."""


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


def _encrypt(value: str) -> str:
    from airflow.models.crypto import get_fernet

    return get_fernet().encrypt(value.encode()).decode()


def _decrypt(value: str) -> str:
    from airflow.models.crypto import get_fernet

    return get_fernet().decrypt(value.encode()).decode()


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def _issuer() -> str:
    from include.officeflow.settings import get_settings

    return get_settings().auth_mfa_issuer


def is_enrolled(username: str) -> bool:
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username)
        return enrolment is not None and enrolment.confirmed_at is not None


def begin(username: str) -> Enrolment:
    """Start (or restart) an enrolment; an active second factor must be removed first."""
    secret = pyotp.random_base32()
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username)
        if enrolment is not None and enrolment.confirmed_at is not None:
            raise MfaError("MFA is already active for this user; an administrator must reset it first")
        if enrolment is None:
            enrolment = MfaEnrolment(username=username, secret_encrypted="", recovery_code_hashes=[])
            session.add(enrolment)
        enrolment.secret_encrypted = _encrypt(secret)
        enrolment.last_time_step = None
    return _enrolment(username, secret)


def pending(username: str) -> Enrolment | None:
    """The begun, not yet confirmed enrolment (to show its QR code again), or None."""
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username)
        if enrolment is None or enrolment.confirmed_at is not None or not enrolment.secret_encrypted:
            return None
        secret = _decrypt(enrolment.secret_encrypted)
    return _enrolment(username, secret)


def _enrolment(username: str, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=_issuer())
    return Enrolment(secret=secret, uri=uri, qr_svg=segno.make(uri, error="m").svg_inline(scale=4))


def _accept_totp(enrolment: MfaEnrolment, code: str) -> bool:
    totp = pyotp.TOTP(_decrypt(enrolment.secret_encrypted))
    now = utcnow()
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if enrolment.last_time_step is not None and step <= enrolment.last_time_step:
                raise MfaError("this code was already used; wait for the next one")
            enrolment.last_time_step = step
            return True
    return False


def confirm(username: str, code: str) -> list[str]:
    """Activate a begun enrolment with a first valid code; return the recovery codes (shown once)."""
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username, with_for_update=True)
        if enrolment is None:
            raise MfaError("no MFA enrolment in progress: call setup first")
        if enrolment.confirmed_at is not None:
            raise MfaError("MFA is already active for this user")
        if not _accept_totp(enrolment, code.strip()):
            raise MfaError("wrong code")
        codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
        enrolment.recovery_code_hashes = [_hash(c) for c in codes]
        enrolment.confirmed_at = utcnow()
        return codes


def verify(username: str, code: str | None) -> None:
    """Check the second factor of an enrolled user: a fresh TOTP code or an unused recovery code."""
    if not code or not code.strip():
        raise MfaError("this account uses two-factor authentication: send the one-time code as 'otp'")
    code = code.strip()
    with session_scope() as session:
        # Locked: two requests with the same code must not both pass the replay check.
        enrolment = session.get(MfaEnrolment, username, with_for_update=True)
        if enrolment is None or enrolment.confirmed_at is None:
            raise MfaError("MFA is not active for this user")
        if code.isdigit() and len(code) == 6:
            if _accept_totp(enrolment, code):
                return
            raise MfaError("wrong one-time code")
        digest = _hash(code)
        if digest in enrolment.recovery_code_hashes:
            enrolment.recovery_code_hashes = [h for h in enrolment.recovery_code_hashes if h != digest]
            return
        raise MfaError("wrong one-time code")


def remaining_recovery_codes(username: str) -> int:
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username)
        return len(enrolment.recovery_code_hashes) if enrolment else 0


def reset(username: str) -> bool:
    """Remove a user's second factor (an administrator's action); whether there was one."""
    with session_scope() as session:
        enrolment = session.get(MfaEnrolment, username)
        if enrolment is None:
            return False
        session.delete(enrolment)
        return True
