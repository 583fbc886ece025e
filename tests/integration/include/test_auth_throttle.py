"""Login throttling on the real store (include/officeflow/auth/throttle.py): failures per user name and per
address in a sliding window, the Retry-After arithmetic, successes that do not count, unlocking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.officeflow.auth import throttle
from tests.harness.store import truncate

T0 = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def attempts(store_url, settings_env):
    """Five failures within 60 s lock; an empty attempts table."""
    settings_env.setenv("OFFICEFLOW_AUTH_LOGIN_MAX_FAILURES", "5")
    settings_env.setenv("OFFICEFLOW_AUTH_LOGIN_WINDOW_SECONDS", "60")
    truncate(store_url, "login_attempts")
    yield
    truncate(store_url, "login_attempts")


def fail(username: str, address: str, *seconds: float) -> None:
    for second in seconds:
        throttle.record(username, address, False, now=T0 + timedelta(seconds=second))


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


@pytest.mark.usefixtures("attempts")
def test_the_fifth_failure_locks_the_user_until_the_oldest_leaves_the_window():
    fail("ada", "192.0.2.1", 0, 10, 20, 30)
    assert throttle.check("ada", "192.0.2.2", now=at(31)) is None  # four failures: the fifth attempt may go
    fail("ada", "192.0.2.1", 40)
    lock = throttle.check("ada", "192.0.2.2", now=at(41))  # from another address too: the user is locked
    assert lock == throttle.Lock(retry_after=19, reason="user")  # the failure at 0 s leaves the window at 60 s
    assert throttle.check("ada", "192.0.2.2", now=at(59.5)) == throttle.Lock(retry_after=1, reason="user")
    assert throttle.check("ada", "192.0.2.2", now=at(60)) is None  # four failures left in (0, 60]
    assert throttle.check("grace", "192.0.2.3", now=at(41)) is None  # other users are not concerned


@pytest.mark.usefixtures("attempts")
def test_retry_after_rounds_up_and_never_says_zero():
    fail("ada", "192.0.2.1", 0, 0.1, 0.2, 0.3, 0.4)
    assert throttle.check("ada", "", now=at(0.5)).retry_after == 60  # 59.5 s rounds up
    assert throttle.check("ada", "", now=at(59.999)).retry_after == 1


@pytest.mark.usefixtures("attempts")
def test_more_failures_push_the_lock_out_only_through_the_last_five():
    fail("ada", "192.0.2.1", 0, 10, 20, 30, 40, 50, 55)
    # The last five are at 20..55: attempts open when the one at 20 s leaves, at 80 s.
    assert throttle.check("ada", "", now=at(56)) == throttle.Lock(retry_after=24, reason="user")


@pytest.mark.usefixtures("attempts")
def test_one_address_is_locked_across_user_names():
    for second, name in enumerate(["ada", "grace", "alan", "barbara", "edsger"]):
        fail(name, "198.51.100.7", second)
    lock = throttle.check("linus", "198.51.100.7", now=at(10))
    assert lock == throttle.Lock(retry_after=50, reason="address")
    assert throttle.check("linus", "198.51.100.8", now=at(10)) is None


@pytest.mark.usefixtures("attempts")
def test_the_longer_of_two_locks_is_reported():
    fail("ada", "198.51.100.7", 0, 1, 2, 3, 4)                 # the user: opens at 60 s
    fail("grace", "198.51.100.7", 20, 21, 22, 23, 24)          # the address: its last five 20..24 -> opens at 80
    lock = throttle.check("ada", "198.51.100.7", now=at(30))
    assert lock == throttle.Lock(retry_after=50, reason="address")


@pytest.mark.usefixtures("attempts")
def test_successes_do_not_count_and_user_names_are_case_insensitive():
    fail("Ada ", "192.0.2.1", 0, 1, 2, 3)
    for second in range(4, 20):
        throttle.record("ada", "192.0.2.1", True, now=at(second))
    assert throttle.check("ADA", "", now=at(21)) is None
    fail("ada", "192.0.2.1", 22)
    assert throttle.check(" ADA", "", now=at(23)).reason == "user"


@pytest.mark.usefixtures("attempts")
def test_an_empty_user_name_or_address_is_not_counted_against_everyone():
    fail("", "192.0.2.1", 0, 1, 2, 3, 4)
    assert throttle.check("", "192.0.2.9", now=at(5)) is None  # the failures count for the address only
    assert throttle.check("ada", "192.0.2.1", now=at(5)).reason == "address"


@pytest.mark.usefixtures("attempts")
def test_record_drops_attempts_older_than_the_window(store_url):
    from sqlalchemy import func, select

    from include.officeflow.store import LoginAttempt, session_scope

    fail("ada", "192.0.2.1", 0, 1, 2)
    throttle.record("grace", "192.0.2.5", False, now=at(200))
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1


@pytest.mark.usefixtures("attempts")
def test_reset_forgets_the_failures_of_a_user_or_an_address():
    fail("ada", "192.0.2.1", 0, 1, 2, 3, 4)
    fail("grace", "198.51.100.7", 0, 1, 2, 3, 4)
    assert throttle.reset() == 0
    assert throttle.reset(username="ADA") == 5
    assert throttle.check("ada", "", now=at(5)) is None
    assert throttle.check("grace", "", now=at(5)) is not None
    assert throttle.reset(source_ip="198.51.100.7") == 5
    assert throttle.check("grace", "198.51.100.7", now=at(5)) is None


@pytest.mark.usefixtures("attempts")
def test_the_limits_come_from_the_settings(settings_env):
    settings_env.setenv("OFFICEFLOW_AUTH_LOGIN_MAX_FAILURES", "2")
    settings_env.setenv("OFFICEFLOW_AUTH_LOGIN_WINDOW_SECONDS", "900")
    fail("ada", "192.0.2.1", 0, 1)
    assert throttle.check("ada", "", now=at(2)) == throttle.Lock(retry_after=898, reason="user")
