"""The one error taxonomy and in-task retry policy of include/officeflow/errors.py."""

from __future__ import annotations

import pytest

from include.officeflow import errors
from include.officeflow.errors import AuthError, RateLimited, ServiceError, parse_retry_after, with_retries


def test_with_retries_waits_the_retry_after_of_a_rate_limit():
    waits: list[float] = []
    answers = iter([RateLimited("slow down", retry_after=3), "ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_retries(call, describe="test", sleep=waits.append) == "ok"
    assert waits == [3]


def test_with_retries_hands_long_waits_to_airflow():
    with pytest.raises(RateLimited):
        with_retries(lambda: (_ for _ in ()).throw(RateLimited("later", retry_after=600)),
                     describe="test", sleep=lambda s: pytest.fail("must not sleep 600 s in a task"))


def test_with_retries_backs_off_on_retryable_errors_and_gives_up():
    waits: list[float] = []
    calls = []

    def failing() -> None:
        calls.append(1)
        raise ServiceError("502 from the provider")

    with pytest.raises(ServiceError, match="502"):
        with_retries(failing, describe="test", max_attempts=4, sleep=waits.append)
    assert len(calls) == 4 and waits == [1, 2, 4]


def test_with_retries_fails_fast_on_permanent_errors():
    calls = []

    def denied() -> None:
        calls.append(1)
        raise AuthError("401")

    with pytest.raises(AuthError):
        with_retries(denied, describe="test", sleep=lambda s: pytest.fail("no wait for a permanent error"))
    assert len(calls) == 1


def test_parse_retry_after_forms():
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert parse_retry_after(None, reset_epoch="1000", now=990) == 10
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (429, errors.RateLimited, True), (401, errors.AuthError, False), (403, errors.AuthError, False),
    (404, errors.NotFound, False), (410, errors.NotFound, False), (409, errors.Conflict, False),
    (400, errors.InvalidInput, False), (422, errors.InvalidInput, False), (500, errors.Unavailable, True),
    (503, errors.Unavailable, True), (0, errors.Unavailable, True),
])
def test_for_status_maps_every_http_status_onto_the_taxonomy(status, kind, retryable):
    error = errors.for_status(status, "Vendor said no", auth_hint=" (check the connection 'x')", retry_after=7)
    assert type(error) is kind and error.retryable is retryable
    assert str(error) == ("Vendor said no (check the connection 'x')" if kind is errors.AuthError else "Vendor said no")
    if kind is errors.RateLimited:
        assert error.retry_after == 7
