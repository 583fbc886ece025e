"""include/officeflow/email_tracking.py on PostgreSQL and SQLite: claims, status rules, suppressions, stats."""

from __future__ import annotations

import pytest

from include.officeflow import email_tracking as tracking


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("email_store")
    from include.officeflow.store import migrate

    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(sqlite_url)
    return sqlite_url


def claim(url: str, key: str = "k1", recipient: str = "ada@example.com", **kw) -> tracking.Claim:
    return tracking.claim(url, key=key, recipient=recipient, template=kw.pop("template", "welcome"), subject="Hi",
                          provider="smtp", dag_id="d", run_id="r", task_id="t", **kw)


def test_idempotency_key_covers_every_part():
    base = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "recipient": "a@x.io", "template": "w"}
    key = tracking.idempotency_key(**base)
    assert len(key) == 64 and tracking.idempotency_key(**{**base, "recipient": " A@X.io "}) == key
    for field, value in [("dag_id", "e"), ("run_id", "s"), ("task_id", "u"), ("map_index", 0),
                         ("recipient", "b@x.io"), ("template", "v")]:
        assert tracking.idempotency_key(**{**base, field: value}) != key


def test_claim_lifecycle(url):
    first = claim(url)
    assert (first.action, first.status, first.attempts, first.resumed) == ("send", "sending", 1, False)
    resumed = claim(url)  # the first try died before recording the answer
    assert (resumed.action, resumed.delivery_id, resumed.resumed, resumed.attempts) == ("send", first.delivery_id,
                                                                                         True, 2)
    tracking.mark_failed(url, first.delivery_id, "SMTPServerDisconnected")
    after_failure = claim(url)
    assert (after_failure.action, after_failure.resumed, after_failure.attempts) == ("send", False, 3)
    tracking.mark_sent(url, first.delivery_id, "<m1@x>")
    done = claim(url)
    assert (done.action, done.status, done.message_id) == ("done", "sent", "<m1@x>")


def test_suppressed_address_is_not_claimed_for_sending(url):
    assert tracking.suppress(url, " Ada@Example.com", reason="bounce", source="ses")
    assert not tracking.suppress(url, "ada@example.com", reason="bounce", source="sendgrid")
    result = claim(url)
    assert (result.action, result.status, result.attempts) == ("suppressed", "suppressed", 0)
    assert tracking.unsuppress(url, "ADA@example.com") and not tracking.unsuppress(url, "ada@example.com")
    again = claim(url)  # removed by an admin: the retry sends
    assert (again.action, again.delivery_id) == ("send", result.delivery_id)


def test_complaint_replaces_a_bounce_as_the_reason(url):
    tracking.suppress(url, "a@example.com", reason="bounce", source="ses")
    tracking.suppress(url, "a@example.com", reason="complaint", source="ses", detail="abuse")
    assert tracking.get_suppression(url, "a@example.com")["reason"] == "complaint"
    tracking.suppress(url, "a@example.com", reason="bounce", source="ses")
    assert tracking.get_suppression(url, "a@example.com")["reason"] == "complaint"


def test_events_only_move_a_delivery_forward(url):
    c = claim(url)
    tracking.mark_sent(url, c.delivery_id, "msg-1")
    r = tracking.record_event(url, provider="ses", event="bounced", recipient="ADA@example.com", message_id="msg-1",
                              suppress_reason="bounce", detail="550")
    assert (r.delivery_id, r.status, r.suppressed) == (c.delivery_id, "bounced", True)
    late = tracking.record_event(url, provider="ses", event="delivered", recipient="ada@example.com",
                                 message_id="msg-1")
    assert late.status == "bounced"
    unknown = tracking.record_event(url, provider="ses", event="complained", recipient="who@example.com",
                                    message_id="other", suppress_reason="complaint")
    assert (unknown.delivery_id, unknown.suppressed) == (None, True)
    with pytest.raises(ValueError, match="unknown delivery event"):
        tracking.record_event(url, provider="ses", event="opened", recipient="a@example.com")


def test_stats_group_by_template_and_day(url):
    for i in range(3):
        c = claim(url, key=f"w{i}", recipient=f"u{i}@example.com")
        tracking.mark_sent(url, c.delivery_id, f"m{i}")
    tracking.record_event(url, provider="ses", event="delivered", recipient="u0@example.com", message_id="m0")
    claim(url, key="f", template="offboarding_notice")
    rows = tracking.stats(url)
    by_template = {r["template"]: r for r in rows}
    assert by_template["welcome"]["total"] == 3 and by_template["welcome"]["sent"] == 3
    assert by_template["welcome"]["delivered"] == 1
    assert by_template["offboarding_notice"]["sending"] == 1
    assert tracking.stats(url, template="nope") == []
    assert len({r["day"] for r in rows}) == 1 and len(rows[0]["day"]) == 10
