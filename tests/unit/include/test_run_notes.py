"""The note a person reads on a run: whose it is, what started it, how it ended."""

from __future__ import annotations

from include.officeflow import run_notes

HIRE = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "correlation_id": "cid-1"}


def test_subject_names_the_person_from_any_workflow_conf():
    assert run_notes.subject(HIRE) == "Ada Lovelace (ada@example.com)"
    assert run_notes.subject({"email": "leaver@example.com", "first_name": None}) == "leaver@example.com"
    assert run_notes.subject({"requester_email": "it@example.com", "for_name": "Bob"}) == "Bob (it@example.com)"
    assert run_notes.subject({}) == run_notes.subject(None) == ""


def test_start_note_for_a_gateway_event():
    started_by = run_notes.started_by_event("bamboohr", "employee.created", "employee.created:4711:2026")
    note = run_notes.start_note(HIRE, started_by=started_by)
    assert note == ("**Ada Lovelace (ada@example.com)** · started by BambooHR event employee.created "
                    "(employee.created:4711:2026) · correlation `cid-1`")


def test_start_note_for_a_person_or_the_rest_api():
    assert run_notes.started_by_trigger("ui", "admin") == "admin in the Airflow UI"
    assert run_notes.started_by_trigger("rest_api", "svc", "workday") == "svc in the REST API (Workday)"
    note = run_notes.start_note({"first_name": "Zoë*", "email": "z@example.com"}, started_by="admin in the Airflow UI",
                                correlation_id="x`y")
    assert note == "**Zoë\\* (z@example.com)** · started by admin in the Airflow UI · correlation `x'y`"
    assert run_notes.start_note({}, started_by="cron") == "started by cron"


def test_finish_note_puts_the_outcome_first_and_the_result_below():
    start = run_notes.start_note(HIRE, started_by="admin in the Airflow UI")
    done = run_notes.finish_note(start, state="success", result={"summarise": "Onboarding of Ada is done.\n- x"})
    assert done == f"✔ **Done** · {start}\n\n---\nOnboarding of Ada is done.\n- x"
    again = run_notes.finish_note(done, state="failed", step_states=["success", "failed", None, "success"])
    assert again == f"✘ **Failed** · {start}\n\n---\n1 failed, 1 not run, 2 success"
    assert run_notes.finish_note(None, state="success") == "✔ **Done**"


def test_finish_note_keeps_a_persons_own_text_and_fits_airflows_column():
    mine = run_notes.start_note(HIRE, started_by="admin in the Airflow UI") + "\n\nCall Ada's recruiter first."
    done = run_notes.finish_note(mine, state="success", result="summary")
    assert done.startswith("✔ **Done** · **Ada Lovelace") and "Call Ada's recruiter first." in done
    huge = run_notes.finish_note("x" * 990, state="success", result="y" * 2000)
    assert len(huge) <= run_notes.MAX_NOTE
    assert huge.endswith("…") and "y" * 100 in huge
