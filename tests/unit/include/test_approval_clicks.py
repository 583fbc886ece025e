"""When a stored Slack approval click may be applied (include/officeflow/approval_clicks.py): parked long enough
for the parking worker's exit to reach the executor, then one whole loop of the scheduler that queued the try."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.officeflow.approval_clicks import Scheduler, ready

PARKED = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
SETTLE = 10.0


def at(seconds: float) -> datetime:
    return PARKED + timedelta(seconds=seconds)


def test_not_before_the_settle_time_whatever_the_scheduler_says():
    scheduler = Scheduler(alive=True, latest_heartbeat=at(9))
    assert ready(now=at(9.9), parked_at=PARKED, settle_seconds=SETTLE, scheduler=scheduler, mark=at(1)) == (
        False, at(1))
    assert ready(now=at(5), parked_at=None, settle_seconds=SETTLE, scheduler=None, mark=None) == (False, None)


def test_a_live_scheduler_must_heartbeat_twice_after_the_settle_time():
    # Its last heartbeat is older than the settle time: its loop may not have read the worker's exit yet.
    old = Scheduler(alive=True, latest_heartbeat=at(8))
    assert ready(now=at(11), parked_at=PARKED, settle_seconds=SETTLE, scheduler=old, mark=None) == (False, None)
    # The first heartbeat after the settle time is the mark; the loop that wrote it may have read the exit late.
    first = Scheduler(alive=True, latest_heartbeat=at(12))
    assert ready(now=at(12.5), parked_at=PARKED, settle_seconds=SETTLE, scheduler=first, mark=None) == (
        False, at(12))
    assert ready(now=at(13), parked_at=PARKED, settle_seconds=SETTLE, scheduler=first, mark=at(12)) == (
        False, at(12))
    # A later heartbeat ends a loop that began after the mark: the exit report has been handled.
    second = Scheduler(alive=True, latest_heartbeat=at(17))
    assert ready(now=at(17.5), parked_at=PARKED, settle_seconds=SETTLE, scheduler=second, mark=at(12)) == (
        True, at(12))


def test_a_click_long_after_the_park_waits_for_one_more_heartbeat_only():
    scheduler = Scheduler(alive=True, latest_heartbeat=at(3600))
    safe, mark = ready(now=at(3601), parked_at=PARKED, settle_seconds=SETTLE, scheduler=scheduler, mark=None)
    assert (safe, mark) == (False, at(3600))
    later = Scheduler(alive=True, latest_heartbeat=at(3605))
    assert ready(now=at(3606), parked_at=PARKED, settle_seconds=SETTLE, scheduler=later, mark=mark)[0]


def test_no_live_scheduler_holds_a_report_after_the_settle_time():
    assert ready(now=at(10), parked_at=PARKED, settle_seconds=SETTLE, scheduler=None, mark=None) == (True, None)
    dead = Scheduler(alive=False, latest_heartbeat=at(2))
    assert ready(now=at(10), parked_at=PARKED, settle_seconds=SETTLE, scheduler=dead, mark=None) == (True, None)
    assert not ready(now=at(9), parked_at=PARKED, settle_seconds=SETTLE, scheduler=dead, mark=None)[0]
