"""The password policy of database users (include/officeflow/auth/passwords.py)."""

from __future__ import annotations

import pytest

from include.officeflow.auth.passwords import PasswordPolicyError, check_password, generate_password


@pytest.mark.parametrize("password", [
    "Correct-Horse-9",        # all four classes
    "correcthorse9!",         # lower, digit, symbol
    "CORRECTHORSE9!",         # upper, digit, symbol
    "Correct horse battery",  # lower, upper, space counts as a symbol
    "Officeflow-Test-Pw1!",   # the test users' password
])
def test_passwords_that_meet_the_policy(password):
    check_password(password, min_length=12)


@pytest.mark.parametrize(("password", "says"), [
    ("Short-1a", "at least 12 characters (has 8)"),
    ("correcthorsebattery", "lacks an upper-case letter, a digit, a symbol"),
    ("correcthorse99", "lacks an upper-case letter, a symbol"),
    ("PASSWORD", "at least 12 characters"),
    ("", "at least 12 characters (has 0)"),
])
def test_weak_passwords_are_refused_with_what_to_change(password, says):
    with pytest.raises(PasswordPolicyError, match="the password must") as raised:
        check_password(password, min_length=12)
    assert says in str(raised.value)


def test_every_problem_is_named_at_once():
    with pytest.raises(PasswordPolicyError) as raised:
        check_password("admin", username="admin", min_length=12)
    message = str(raised.value)
    assert "at least 12 characters" in message and "mix 3 of" in message and "not contain the user name" in message


def test_the_password_may_not_contain_the_user_name_in_any_case():
    with pytest.raises(PasswordPolicyError, match="not contain the user name"):
        check_password("My-ADA.Lovelace-1", username="ada.lovelace", min_length=12)
    check_password("My-ADA.Lovelace-1", username="grace", min_length=12)
    check_password("Xy-ab-123456", username="ab", min_length=12)  # user names under 3 characters are not checked


def test_the_minimum_length_comes_from_the_settings(settings_env):
    settings_env.setenv("OFFICEFLOW_PASSWORD_MIN_LENGTH", "16")
    with pytest.raises(PasswordPolicyError, match="at least 16 characters"):
        check_password("Correct-Horse-9")
    check_password("Correct-Horse-9-Battery")


def test_generated_passwords_meet_the_policy():
    for _ in range(50):
        password = generate_password()
        assert len(password) == 20
        check_password(password, min_length=20)
