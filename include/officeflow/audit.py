"""The audit log: one function appends every OfficeFlow audit record.

By default the record commits in its own transaction. Pass the caller's ``session`` to write it
inside that transaction instead, so the record commits (or rolls back) together with the change it
describes (the dispatcher's triggered run, an archived document, a share).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from include.officeflow.store import AuditLog, session_scope


def audit(action: str, *, actor: str, resource_type: str, outcome: str, resource_id: str | None = None,
          correlation_id: str | None = None, session: Session | None = None, store_url: str | None = None,
          **details: Any) -> None:
    """Append one audit record; the keyword arguments beyond these become its ``details``.

    ``session``: add the record to the caller's open transaction (no commit here). Otherwise it
    commits on its own, in the store at ``store_url`` (task code passes ``task_store_url()``).
    """
    record = AuditLog(actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
                      outcome=outcome, correlation_id=correlation_id, details=details)
    if session is not None:
        session.add(record)
        return
    with session_scope(store_url) as own:
        own.add(record)
