"""The documents' domain events (docs/events.md), written in the transaction of the change they report:

- ``com.officeflow.document.stored``: a new version is recorded (version 1 is a new document), by a workflow task
  (:func:`~include.officeflow.documents.versions.store_document`) or an upload;
- ``com.officeflow.document.shared``: readers were added, or a share link was created;
- ``com.officeflow.document.deleted`` / ``.restored`` / ``.purged``: the retention steps.

Subject: the document id; organization: the document's. Data holds ids and states: never the title, the logical
key, the file name or a share link's URL (a bearer link), which may name a person or grant access.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from include.officeflow.documents.access import Reader
from include.officeflow.events.outbox import add_event
from include.officeflow.events.values import id_or_digest
from include.officeflow.store import Document, DocumentVersion


def document_event(session: Session, action: str, document: Document, *, correlation_id: str | None,
                   **data: Any) -> None:
    """Write ``com.officeflow.document.<action>`` for ``document`` with ``data`` in ``session``'s transaction."""
    add_event(session, area="document", action=action, subject=document.id, organization_id=document.organization_id,
              correlation_id=correlation_id, data={"document_id": document.id, **data})


def stored(session: Session, document: Document, row: DocumentVersion, *, source: str,
           correlation_id: str | None) -> None:
    """``document.stored`` for version ``row`` (``source``: ``workflow`` or ``upload``)."""
    document_event(session, "stored", document, correlation_id=correlation_id, version=row.version,
                   new_document=row.version == 1, source=source, content_type=row.content_type,
                   size_bytes=row.size_bytes, sha256=row.checksum_sha256, template=row.template,
                   dag_id=row.dag_id, run_id=row.run_id, task_id=row.task_id)


def readers_added(session: Session, document: Document, readers: Iterable[Reader], *,
                  correlation_id: str | None) -> None:
    """``document.shared`` (``share`` = ``readers``) for the readers just added; nothing when none was."""
    added = [{"principal_type": r.principal_type, "principal_id": id_or_digest(r.principal)} for r in readers]
    if added:
        document_event(session, "shared", document, correlation_id=correlation_id, share="readers", readers=added)


def link_created(session: Session, document: Document, version: int, expires_at: datetime, seconds: int, *,
                 correlation_id: str | None) -> None:
    """``document.shared`` (``share`` = ``link``) for a share link to ``version`` (never its URL)."""
    document_event(session, "shared", document, correlation_id=correlation_id, share="link", version=version,
                   expires_at=expires_at.isoformat(), expires_in_seconds=seconds)
