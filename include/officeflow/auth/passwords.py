"""The password policy for database users: a minimum length and three of four character classes."""

from __future__ import annotations

import secrets
import string

CLASSES = {
    "a lower-case letter": set(string.ascii_lowercase),
    "an upper-case letter": set(string.ascii_uppercase),
    "a digit": set(string.digits),
    "a symbol": set(string.punctuation + " "),
}


class PasswordPolicyError(ValueError):
    """The password breaks the policy; the message says what to change."""


def check_password(password: str, *, username: str = "", min_length: int | None = None) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` meets the policy."""
    if min_length is None:
        from include.officeflow.settings import get_settings

        min_length = get_settings().password_min_length
    problems = []
    if len(password) < min_length:
        problems.append(f"have at least {min_length} characters (has {len(password)})")
    missing = [name for name, chars in CLASSES.items() if not chars.intersection(password)]
    if len(missing) > 1:
        problems.append("mix 3 of: lower case, upper case, digits, symbols (lacks " + ", ".join(missing) + ")")
    if len(username) >= 3 and username.lower() in password.lower():
        problems.append("not contain the user name")
    if problems:
        raise PasswordPolicyError("the password must " + "; ".join(problems))


def generate_password(length: int = 20) -> str:
    """A random password that meets the policy (for generated admin passwords)."""
    while True:
        candidate = secrets.token_urlsafe(length)[:length]
        try:
            check_password(candidate, min_length=min(length, 12))
        except PasswordPolicyError:
            continue
        return candidate
