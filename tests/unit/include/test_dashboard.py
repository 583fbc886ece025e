"""The dashboard's arithmetic (include/officeflow/dashboard.py): periods, daily series, lead times, approval
waits, email rates. The store queries and Airflow's side are tests/integration/plugins/test_dashboard_api.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from include.officeflow import dashboard as d

TODAY = date(2026, 12, 2)
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_the_period_is_the_last_days_with_today():
    days = d.period_days(7, TODAY)
    assert days[0] == date(2026, 11, 26) and days[-1] == TODAY and len(days) == 7
    assert d.period_start(7, TODAY) == datetime(2026, 11, 26, tzinfo=UTC)
    assert len(d.period_days(90, TODAY)) == 90


def test_daily_series_fill_every_day_and_keep_unknown_keys():
    days = d.period_days(3, TODAY)
    rows = [("2026-12-01", "success", 2), ("2026-12-02", "failed", 1), ("2026-12-02", "success", 1),
            ("2026-11-01", "success", 9), ("2026-12-02", "up_for_retry", 1)]
    series = d.daily_series(rows, days, ("success", "failed", "running"))
    assert series == {"success": [0, 2, 1], "failed": [0, 0, 1], "running": [0, 0, 0], "up_for_retry": [0, 0, 1]}
    assert list(series)[:3] == ["success", "failed", "running"]
    assert d.totals(series) == {"success": 3, "failed": 1, "running": 0, "up_for_retry": 1}


def test_rates_are_none_without_a_whole():
    assert d.rate(1, 3) == 33.3 and d.rate(0, 0) is None


def test_lead_times_count_successful_runs_and_set_the_others_apart():
    events = [("onboarding", "r1", T0), ("onboarding", "r2", T0), ("onboarding", "r3", T0),
              ("onboarding", "r4", T0), ("offboarding", "r5", T0), ("onboarding", "gone", T0)]
    runs = {("onboarding", "r1"): ("success", T0 + timedelta(minutes=10)),
            ("onboarding", "r2"): ("success", T0 + timedelta(minutes=30)),
            ("onboarding", "r3"): ("failed", T0 + timedelta(minutes=1)),
            ("onboarding", "r4"): ("running", None),
            ("offboarding", "r5"): ("success", T0 - timedelta(seconds=5))}  # clocks apart: never negative
    lead = d.lead_times(events, runs)
    assert lead["workflows"] == [
        {"dag_id": "offboarding", "count": 1, "p50": 0.0, "p95": 0.0, "max": 0.0, "failed": 0, "unfinished": 0},
        {"dag_id": "onboarding", "count": 2, "p50": 1200.0, "p95": 1740.0, "max": 1800.0, "failed": 1,
         "unfinished": 2}]
    assert lead["overall"]["count"] == 3


def test_approval_waits_in_buckets_answered_and_waiting():
    now = T0 + timedelta(days=2)
    requests = [("equipment", T0, T0 + timedelta(minutes=20)), ("equipment", T0, T0 + timedelta(hours=5)),
                ("onboarding", T0, None), ("onboarding", now - timedelta(days=4), None)]
    waits = d.approval_waits(requests, now)
    assert waits["answered"]["count"] == 2 and waits["answered"]["max"] == 5 * 3600.0
    assert waits["waiting"] == 2 and waits["oldest_waiting_seconds"] == 4 * 86400.0
    assert [(b["label"], b["answered"], b["waiting"]) for b in waits["buckets"]] == [
        ("< 1 h", 1, 0), ("1-4 h", 0, 0), ("4-24 h", 1, 0), ("1-3 days", 0, 1), ("> 3 days", 0, 1)]
    assert [(w["dag_id"], w["count"], w["waiting"]) for w in waits["workflows"]] == [("equipment", 2, 0),
                                                                                       ("onboarding", 0, 2)]
    assert d.approval_waits([], now)["oldest_waiting_seconds"] is None


def test_email_rates_over_what_the_provider_accepted():
    series = {"delivered": [3, 1], "bounced": [1, 0], "complained": [0, 1], "sent": [1, 0], "suppressed": [2, 0],
              "failed": [1, 0], "sending": [0, 1]}
    summary = d.email_summary(series)
    assert summary["accepted"] == 7  # delivered 4, bounced 1, complained 1, sent 1
    assert summary["delivery_rate"] == 71.4 and summary["bounce_rate"] == 14.3
    assert d.email_summary({})["delivery_rate"] is None
