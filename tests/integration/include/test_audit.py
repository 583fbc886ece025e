"""include/officeflow/audit.py on the real PostgreSQL store: a record in its own transaction, or inside
the caller's (committed and rolled back with the change it describes)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from include.officeflow.audit import audit
from include.officeflow.store import AuditLog, session_scope


def rows(store_url: str) -> list[AuditLog]:
    with session_scope(store_url) as session:
        return list(session.scalars(select(AuditLog).order_by(AuditLog.id)))


def test_audit_commits_in_its_own_transaction_with_the_extra_keywords_as_details(clean_store):
    audit("webhook_endpoint.updated", actor="user:ada", resource_type="webhook_endpoint", resource_id="ep-1",
          outcome="success", correlation_id="cid-1", store_url=clean_store, fields=["name"])

    [row] = rows(clean_store)
    assert (row.action, row.actor, row.resource_type, row.resource_id, row.outcome, row.correlation_id) == (
        "webhook_endpoint.updated", "user:ada", "webhook_endpoint", "ep-1", "success", "cid-1")
    assert row.details == {"fields": ["name"]}


def test_audit_inside_the_callers_session_commits_and_rolls_back_with_it(clean_store):
    with session_scope(clean_store) as session:
        audit("workflow.triggered", actor="webhook:ep", resource_type="dag_run", resource_id="run-1",
              outcome="success", session=session, dag_id="employee_onboarding")
        assert rows(clean_store) == []  # not committed before the caller's transaction is
    assert [(r.action, r.details) for r in rows(clean_store)] == [
        ("workflow.triggered", {"dag_id": "employee_onboarding"})]

    with pytest.raises(RuntimeError), session_scope(clean_store) as session:
        audit("document.archived", actor="workflow:x", resource_type="document", resource_id="d-1",
              outcome="success", session=session)
        raise RuntimeError("the change failed")
    assert [r.action for r in rows(clean_store)] == ["workflow.triggered"]
