"""Which of a Workday report's entries are changes to reconcile (include/officeflow/workday_reconciliation.py): the
window, the job-change rules, unusable entries, and how an inbox event's conf is matched to a worker. What the
reconciliation records and starts is tests/integration/include/test_workday_reconciliation.py."""

from __future__ import annotations

from datetime import date

import pytest

from include.officeflow.workday_reconciliation import Summary, _matches, changes, worker_changes

SINCE = date(2026, 11, 20)


def entry(**columns: str) -> dict[str, str]:
    return {"Worker_ID": "21050", "First_Name": "Mary", "Last_Name": "Jackson", "Work_Email": "mary@officeflow.test",
            "Department": "Engineering", "Job_Title": "Engineer", "Active": "1", **columns}


def kinds(found) -> list[tuple[str, str]]:
    return [(change.event_type, change.effective.isoformat()) for change in found]


def test_a_recent_hire_is_a_change_with_the_hr_documents_fields():
    [change] = worker_changes(entry(Hire_Date="2026-11-30", Job_Effective_Date="2026-11-30",
                                    Manager_Email="boss@officeflow.test"), SINCE)
    assert (change.event_type, change.id) == ("employee.created", "21050:hire:2026-11-30")
    assert change.fields == {"firstName": "Mary", "lastName": "Jackson", "workEmail": "mary@officeflow.test",
                             "department": "Engineering", "jobTitle": "Engineer",
                             "supervisorEmail": "boss@officeflow.test", "hireDate": "2026-11-30"}
    assert change.email == "mary@officeflow.test"


def test_a_future_hire_counts_and_old_history_does_not():
    assert kinds(worker_changes(entry(Hire_Date="2027-01-04"), SINCE)) == [("employee.created", "2027-01-04")]
    assert worker_changes(entry(Hire_Date="2020-01-06", Job_Effective_Date="2021-03-01",
                                Termination_Date="2024-05-31", Active="0"), SINCE) == []
    # The window's first day is in it.
    assert kinds(worker_changes(entry(Hire_Date="2026-11-20"), SINCE)) == [("employee.created", "2026-11-20")]


def test_a_job_change_is_a_new_job_after_the_hire_and_before_the_termination():
    promoted = entry(Hire_Date="2021-02-01", Job_Effective_Date="2026-12-01", Job_Title="Engineering Manager")
    [change] = worker_changes(promoted, SINCE)
    assert (change.event_type, change.id, change.fields["jobTitle"]) == (
        "employee.job_changed", "21050:job_change:2026-12-01", "Engineering Manager")
    # The job a new hire starts with is the hire itself.
    assert kinds(worker_changes(entry(Hire_Date="2026-12-01", Job_Effective_Date="2026-12-01"), SINCE)) == [
        ("employee.created", "2026-12-01")]
    # A job "effective" on or after the last day is the termination's bookkeeping, not a role change.
    leaving = entry(Hire_Date="2021-02-01", Job_Effective_Date="2026-12-15", Termination_Date="2026-12-15",
                    Active="0")
    assert kinds(worker_changes(leaving, SINCE)) == [("employee.terminated", "2026-12-15")]


def test_hired_and_gone_within_the_window_is_both_in_order():
    short = entry(Hire_Date="2026-11-23", Job_Effective_Date="2026-11-23", Termination_Date="2026-11-27")
    assert kinds(worker_changes(short, SINCE)) == [("employee.created", "2026-11-23"),
                                                   ("employee.terminated", "2026-11-27")]


def test_unusable_entries_are_listed_and_the_others_still_read():
    summary = Summary()
    found = changes([entry(Worker_ID="", Hire_Date="2026-12-01"), entry(Hire_Date="01/12/2026"),
                     entry(Worker_ID="21051", Hire_Date="2026-12-02")], since=SINCE, summary=summary)
    assert kinds(found) == [("employee.created", "2026-12-02")]
    assert (summary.workers, summary.changes) == (3, 1)
    assert summary.unusable == ["entry 0 (no id): no Worker_ID",
                                "entry 1 (21050): Hire_Date '01/12/2026' is not a date (YYYY-MM-DD)"]


@pytest.mark.parametrize(("conf", "event_type", "known"), [
    pytest.param({"employee_id": "21050"}, "employee.created", True, id="same-id"),
    pytest.param({"employee_id": "99", "email": "MARY@officeflow.test"}, "employee.created", True,
                 id="same-email-other-case"),
    pytest.param({"employee_id": "99", "email": "other@officeflow.test"}, "employee.created", False,
                 id="someone-else"),
    pytest.param({}, "employee.created", False, id="a-conf-naming-nobody"),
    pytest.param({"employee_id": "21050", "job_title": "engineer"}, "employee.job_changed", True, id="same-job"),
    pytest.param({"employee_id": "21050", "job_title": "Designer"}, "employee.job_changed", False,
                 id="another-job-change"),
    pytest.param({"employee_id": "21050"}, "employee.job_changed", True, id="a-job-change-without-title"),
])
def test_an_inbox_events_conf_is_matched_by_worker_and_for_job_changes_by_title(conf, event_type, known):
    assert _matches(conf, worker_id="21050", email="mary@officeflow.test", job_title="Engineer",
                    event_type=event_type) is known
    assert _matches(conf, worker_id="", email=None, job_title=None, event_type=event_type) is False
