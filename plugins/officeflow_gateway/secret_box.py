"""Endpoint secrets at rest: Fernet-encrypted with Airflow's own key (``[core] fernet_key``).

Using Airflow's MultiFernet means OfficeFlow secrets follow Airflow's key rotation
(``airflow rotate-fernet-key`` semantics: the first key encrypts, every key decrypts).
"""

from __future__ import annotations

import secrets as _random


def encrypt(plaintext: str) -> str:
    from airflow.models.crypto import get_fernet

    return get_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    from airflow.models.crypto import get_fernet

    return get_fernet().decrypt(token.encode()).decode()


def new_secret(nbytes: int = 32) -> str:
    """A random URL-safe secret (BambooHR keys and Workday passwords)."""
    return _random.token_urlsafe(nbytes)
