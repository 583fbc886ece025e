"""The audit log: one function appends every OfficeFlow audit record; the application has no path that
changes or deletes one (``query`` only reads).

By default the record commits in its own transaction. Pass the caller's ``session`` to write it
inside that transaction instead, so the record commits (or rolls back) together with the change it
describes (the dispatcher's triggered run, an archived document, a share).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.officeflow.store import AuditLog, session_scope

RESOURCE_ID_LENGTH = 255  # audit_log.resource_id: VARCHAR(255)


def audit(action: str, *, actor: str, resource_type: str, outcome: str, resource_id: str | None = None,
          correlation_id: str | None = None, organization_id: str | None = None, source_ip: str | None = None,
          session: Session | None = None, store_url: str | None = None, **details: Any) -> None:
    """Append one audit record; the keyword arguments beyond these become its ``details``.

    ``session``: add the record to the caller's open transaction (no commit here). Otherwise it
    commits on its own, in the store at ``store_url`` (task code passes ``task_store_url()``).
    """
    if resource_id is not None and len(resource_id) > RESOURCE_ID_LENGTH:
        # The id of what a caller named can be longer than the column (a 320-character email address): the record
        # keeps it whole in its details rather than fail (and fail the request whose change is already committed).
        details = {**details, "resource_id": resource_id}
        resource_id = resource_id[:RESOURCE_ID_LENGTH - 1] + "…"
    record = AuditLog(actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
                      outcome=outcome, correlation_id=correlation_id, details=details,
                      organization_id=organization_id, source_ip=source_ip)
    if session is not None:
        session.add(record)
        return
    with session_scope(store_url) as own:
        own.add(record)


def query(*, organizations: set[str] | None, actor: str | None = None, action: str | None = None,
          resource_type: str | None = None, outcome: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 100, before_id: int | None = None) -> list[AuditLog]:
    """Audit records, newest first, filtered; ``organizations`` None = every organization (and the records
    that belong to none, such as logins); a set = only records of those organizations."""
    statement = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if organizations is not None:
        statement = statement.where(AuditLog.organization_id.in_(organizations))
    for column, value in ((AuditLog.actor, actor), (AuditLog.action, action),
                          (AuditLog.resource_type, resource_type), (AuditLog.outcome, outcome)):
        if value:
            statement = statement.where(column == value)
    if since:
        statement = statement.where(AuditLog.at >= since)
    if until:
        statement = statement.where(AuditLog.at < until)
    if before_id:
        statement = statement.where(AuditLog.id < before_id)
    with session_scope() as session:
        return list(session.scalars(statement))
