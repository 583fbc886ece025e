"""Soft delete with retention: a deleted document is hidden at once, its bytes are kept
``OFFICEFLOW_DOCUMENTS_RETENTION_DAYS`` (``purge_after``) and it can be restored until then; the purge
removes the bytes of documents past retention, then their rows. Each step writes its domain event
(``com.officeflow.document.deleted`` / ``.restored`` / ``.purged``) in its transaction.

The ``document_retention`` Airflow DAG runs :func:`purge_expired` daily; to run it by hand, next to the store::

    python -m include.officeflow.documents.retention purge [--dry-run]

It prints one JSON line per document and exits 1 if any document's bytes could not be removed (that
document is kept and tried again on the next run).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from include.officeflow.audit import audit
from include.officeflow.documents import events
from include.officeflow.documents.storage import storage_for
from include.officeflow.settings import get_settings
from include.officeflow.store import Document, DocumentReader, DocumentVersion, session_scope
from include.officeflow.store.models import utcnow

log = logging.getLogger(__name__)
PURGE_ACTOR = "system:document-retention"


class NotDeleted(ValueError):
    """Restore of a document that is not deleted."""


class RetentionExpired(ValueError):
    """Restore of a document whose retention has ended (its bytes are purged, or about to be)."""


def aware(value: datetime) -> datetime:
    """SQLite (dev mode) gives naive datetimes back; the store writes UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def soft_delete(session: Session, document: Document, *, actor: str, correlation_id: str | None = None,
                source_ip: str | None = None, now: datetime | None = None) -> datetime:
    """Mark the (locked) document deleted and audit it; returns ``purge_after``."""
    now = now or utcnow()
    purge_after = now + timedelta(days=get_settings().documents_retention_days)
    document.deleted_at, document.deleted_by, document.purge_after = now, actor, purge_after
    audit("document.deleted", actor=actor, resource_type="document", resource_id=document.id, outcome="success",
          correlation_id=correlation_id, session=session, organization_id=document.organization_id,
          source_ip=source_ip, purge_after=purge_after.isoformat(), versions=document.current_version)
    events.document_event(session, "deleted", document, correlation_id=correlation_id,
                          purge_after=purge_after.isoformat(), versions=document.current_version)
    return purge_after


def restore(session: Session, document: Document, *, actor: str, correlation_id: str | None = None,
            source_ip: str | None = None, now: datetime | None = None) -> None:
    """Undo a soft delete within retention (audited ``document.restored``)."""
    if document.deleted_at is None or document.purge_after is None:
        raise NotDeleted(f"document {document.id!r} is not deleted")
    if aware(document.purge_after) <= (now or utcnow()):
        raise RetentionExpired(f"document {document.id!r} was deleted on {aware(document.deleted_at).isoformat()} and "
                               f"its retention ended on {aware(document.purge_after).isoformat()}: it can no longer "
                               "be restored")
    deleted_at = document.deleted_at
    document.deleted_at = document.deleted_by = document.purge_after = None
    audit("document.restored", actor=actor, resource_type="document", resource_id=document.id, outcome="success",
          correlation_id=correlation_id, session=session, organization_id=document.organization_id,
          source_ip=source_ip, deleted_at=aware(deleted_at).isoformat())
    events.document_event(session, "restored", document, correlation_id=correlation_id,
                          versions=document.current_version)


@dataclass
class Purged:
    document_id: str
    organization_id: str
    logical_key: str
    versions: int
    purged: bool
    errors: list[str] = field(default_factory=list)
    size_bytes: int = 0  # of every version together


def purge_expired(*, now: datetime | None = None, dry_run: bool = False, store_url: str | None = None,
                  limit: int = 1000) -> list[Purged]:
    """Remove the bytes of every deleted document past ``purge_after``, then its rows (audited
    ``document.purged``). A document whose bytes cannot all be removed keeps its rows (``purged`` False,
    ``errors`` saying why) and is tried again on the next run; bytes already gone count as removed."""
    now = now or utcnow()
    with session_scope(store_url) as session:
        due = list(session.scalars(select(Document.id).where(Document.deleted_at.is_not(None),
                                                             Document.purge_after <= now)
                                   .order_by(Document.purge_after).limit(limit)))
    results = [_purge_one(document_id, now, dry_run, store_url) for document_id in due]
    return [r for r in results if r is not None]


def _purge_one(document_id: str, now: datetime, dry_run: bool, store_url: str | None) -> Purged | None:
    with session_scope(store_url) as session:
        document = session.scalars(select(Document).where(Document.id == document_id).with_for_update()).first()
        # Restored (or purged by another run) since it was listed: nothing to do.
        if document is None or document.purge_after is None or aware(document.purge_after) > now:
            return None
        versions = list(session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id)))
        result = Purged(document.id, document.organization_id, document.logical_key, len(versions), False,
                        size_bytes=sum(version.size_bytes for version in versions))
        if dry_run:
            return result
        for version in versions:
            try:
                storage_for(version.storage_uri).delete(version.storage_uri, version.storage_version_id)
            except FileNotFoundError:
                pass
            except Exception as exc:  # any storage failure keeps the rows for the next run
                result.errors.append(f"version {version.version} ({version.storage_uri}): {exc}")
        if result.errors:
            log.error("Purge of document %s incomplete, kept for the next run: %s", document_id, result.errors)
            return result
        session.execute(delete(DocumentReader).where(DocumentReader.document_id == document_id))
        session.execute(delete(DocumentVersion).where(DocumentVersion.document_id == document_id))
        session.delete(document)
        audit("document.purged", actor=PURGE_ACTOR, resource_type="document", resource_id=document_id,
              outcome="success", session=session, organization_id=document.organization_id,
              logical_key=document.logical_key, versions=len(versions),
              deleted_at=aware(document.deleted_at).isoformat() if document.deleted_at else None,
              deleted_by=document.deleted_by)
        events.document_event(session, "purged", document, correlation_id=None, versions=len(versions))
        result.purged = True
        log.info("Purged document %s (%s/%s): %d version(s)", document_id, document.organization_id,
                 document.logical_key, len(versions))
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.officeflow.documents.retention",
                                     description="Remove deleted documents past their retention.")
    sub = parser.add_subparsers(dest="command", required=True)
    purge = sub.add_parser("purge", help="purge the bytes and rows of deleted documents past retention")
    purge.add_argument("--dry-run", action="store_true", help="list what would be purged; change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    results = purge_expired(dry_run=args.dry_run)
    for result in results:
        print(json.dumps(asdict(result), sort_keys=True))
    failed = [r for r in results if r.errors]
    print(f"{'would purge' if args.dry_run else 'purged'} {sum(r.purged or args.dry_run for r in results)} "
          f"document(s), {len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
