"""include/officeflow/integration_metrics.py: the outcome of a call from what the hook raised; closed label sets."""

from __future__ import annotations

import pytest

from include.officeflow import errors
from include.officeflow.integration_metrics import external_call, outcome_of, record


@pytest.mark.parametrize(("error", "outcome"), [
    (None, "ok"),
    (errors.RateLimited("slow down", 3), "rate_limited"),
    (errors.Unavailable("503"), "unavailable"),
    (errors.ServiceError("odd answer"), "unavailable"),
    (TimeoutError("read timed out"), "unavailable"),
    (errors.AuthError("bad token"), "auth_error"),
    (errors.InvalidInput("bad email"), "refused"),
    (errors.NotFound("no such user"), "refused"),
    (errors.Conflict("exists"), "refused"),
])
def test_outcomes(error, outcome):
    assert outcome_of(error) == outcome


def test_labels_are_closed_sets():
    with pytest.raises(ValueError, match="unknown integration"):
        record("https://evil.example/path", "ok", 0.1)
    with pytest.raises(ValueError, match="unknown integration"):
        record("slack", "teapot", 0.1)


def test_the_call_raises_what_it_raised():
    with pytest.raises(errors.NotFound), external_call("okta"):
        raise errors.NotFound("gone")
    with external_call("slack"):
        pass
