"""Documents and their versions in the store (``documents`` / ``document_versions``), reading them back,
and archiving (offboarding).

One document per ``(organization_id, logical_key)``; each store adds version ``current_version + 1``
while holding the document's row lock (``SELECT … FOR UPDATE``; SQLite serialises writers), so
concurrent stores get distinct numbers and explicit keys are never overwritten by another version.
Every upload is read back and its SHA-256 compared before the version is recorded.
Retries: a store from the same dag run, task and map index with the same content returns the version
already recorded instead of adding another (``task_id`` is recorded as ``task`` or ``task[map_index]``).
A recorded version writes ``com.officeflow.document.stored``, added readers ``document.shared``, in the same
transaction (:mod:`.events`); a retry that finds its version writes none.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.officeflow.audit import audit
from include.officeflow.documents import events
from include.officeflow.documents.access import Reader, add_readers
from include.officeflow.documents.errors import DocumentError
from include.officeflow.documents.render import PDF
from include.officeflow.documents.storage import Storage, configured_storage, sha256_hex, storage_for
from include.officeflow.store import Document, DocumentVersion, session_scope
from include.officeflow.store.models import new_id, utcnow

log = logging.getLogger(__name__)

# Segments of at most 255 characters: each is a folder or file name in the local-folder storage (NAME_MAX), so a
# key is valid on every storage alike (a longer one failed in the file system: a 500).
_LOGICAL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,254}(/[A-Za-z0-9][A-Za-z0-9._\-]{0,254})*$")
_ORGANIZATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class RunRef:
    """The workflow task that produced a version; a retry of it must not add another version."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @property
    def task_key(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass(frozen=True)
class StoredVersion:
    document_id: str
    version: int
    storage_uri: str
    storage_version_id: str | None
    checksum: str
    size: int
    content_type: str
    created: bool = field(default=True, compare=False)  # False: an earlier attempt of the same task stored it

    def as_xcom(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("created")
        return data


def validate_document(organization_id: str, logical_key: str, title: str, owner: str, content_type: str,
                      tags: Mapping[str, Any]) -> None:
    if not _ORGANIZATION.match(organization_id or ""):
        raise DocumentError(f"organization_id must match {_ORGANIZATION.pattern}, got {organization_id!r}")
    if not logical_key or len(logical_key) > 512 or not _LOGICAL_KEY.match(logical_key) or ".." in logical_key:
        raise DocumentError("logical_key must be 1-512 characters of letters, digits, '.', '_', '-' in "
                            f"'/'-separated segments of at most 255 (no '..'), got {logical_key!r}")
    if not title or len(title) > 500:
        raise DocumentError("title must be 1-500 characters")
    if not owner or len(owner) > 255:
        raise DocumentError("owner must be 1-255 characters")
    if not content_type or "/" not in content_type or len(content_type) > 255:
        raise DocumentError(f"content_type must be a MIME type, got {content_type!r}")
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise DocumentError(f"tags must map non-empty strings to strings, got {key!r}: {value!r}")


def _lock_document(session: Session, organization_id: str, logical_key: str, title: str, owner: str,
                   tags: Mapping[str, str]) -> Document:
    """Create the document if needed (no error if a concurrent store just did) and lock its row."""
    dialect = session.get_bind().dialect.name
    table = Document.__table__
    now = utcnow()
    values = {"id": new_id(), "organization_id": organization_id, "logical_key": logical_key, "title": title,
              "owner": owner, "tags": dict(tags), "current_version": 0, "created_at": now, "updated_at": now}
    if dialect in ("postgresql", "sqlite"):
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(table).values(values).on_conflict_do_nothing(
            index_elements=["organization_id", "logical_key"]))
    else:  # pragma: no cover - other databases: plain insert, a duplicate is retried by the caller
        exists = session.scalar(select(Document.id).where(Document.organization_id == organization_id,
                                                          Document.logical_key == logical_key))
        if exists is None:
            session.add(Document(**values))
            session.flush()
    document = session.scalars(
        select(Document).where(Document.organization_id == organization_id, Document.logical_key == logical_key)
        .with_for_update()
    ).one()
    return document


def store_document(
    data: bytes,
    *,
    logical_key: str,
    title: str,
    owner: str,
    content_type: str = PDF,
    organization_id: str = "default",
    tags: Mapping[str, str] | None = None,
    readers: Sequence[str | Mapping[str, str] | Reader] = (),
    template: str | None = None,
    run: RunRef | None = None,
    created_by: str | None = None,
    correlation_id: str | None = None,
    store_url: str | None = None,
    storage: Storage | None = None,
) -> StoredVersion:
    """Store ``data`` as the next version of the document ``(organization_id, logical_key)``.

    The upload happens under the document's row lock and is read back and checksummed before the version
    row commits; on any error nothing is recorded. The document keeps its first owner; ``title`` and
    ``tags`` (merged) follow the latest store; ``readers`` are added to the document's readers.
    The version's ``document.stored`` event (and ``document.shared`` for new readers) commits with it.
    """
    tags = dict(tags or {})
    validate_document(organization_id, logical_key, title, owner, content_type, tags)
    parsed_readers = [Reader.parse(r) for r in readers]
    if not isinstance(data, bytes | bytearray) or not data:
        raise DocumentError("document content must be non-empty bytes")
    data = bytes(data)
    checksum, size = sha256_hex(data), len(data)
    storage = storage or configured_storage()
    creator = created_by or (f"task:{run.dag_id}.{run.task_key}" if run else owner)

    for attempt in range(3):
        try:
            with session_scope(store_url) as session:
                document = _lock_document(session, organization_id, logical_key, title, owner, tags)
                if document.deleted_at is not None:
                    raise DocumentError(f"document {document.id} ({organization_id}/{logical_key}) is deleted: "
                                        f"restore it (POST /documents/{document.id}/restore) or wait for its purge")
                added = add_readers(session, document.id, parsed_readers, granted_by=creator)
                if run is not None:
                    previous = session.scalars(select(DocumentVersion).where(
                        DocumentVersion.document_id == document.id, DocumentVersion.dag_id == run.dag_id,
                        DocumentVersion.run_id == run.run_id, DocumentVersion.task_id == run.task_key,
                        DocumentVersion.checksum_sha256 == checksum,
                    ).order_by(DocumentVersion.version.desc())).first()
                    if previous is not None:
                        log.info("Document %s version %d was already stored by this task; not adding another",
                                 document.id, previous.version)
                        return _stored(previous, created=False)
                number = document.current_version + 1
                put = storage.put(f"{organization_id}/{logical_key}", number, data, content_type, checksum)
                read_back = storage.read(put.storage_uri, put.storage_version_id)
                if sha256_hex(read_back) != checksum or len(read_back) != size:
                    raise DocumentError(f"checksum mismatch after upload to {put.storage_uri}; version not recorded")
                row = DocumentVersion(
                    document_id=document.id, version=number, storage_uri=put.storage_uri,
                    storage_version_id=put.storage_version_id, checksum_sha256=checksum, size_bytes=size,
                    content_type=content_type, template=template, created_by=creator,
                    dag_id=run.dag_id if run else None, run_id=run.run_id if run else None,
                    task_id=run.task_key if run else None,
                )
                session.add(row)
                document.current_version = number
                document.title = title
                document.tags = {**(document.tags or {}), **tags}
                document.updated_at = utcnow()
                session.flush()
                events.stored(session, document, row, source="workflow", correlation_id=correlation_id)
                events.readers_added(session, document, added, correlation_id=correlation_id)
                log.info("Stored document %s (%s) version %d: %s, %d bytes, sha256 %s", document.id, logical_key,
                         number, put.storage_uri, size, checksum)
                return _stored(row)
        except IntegrityError:
            if attempt == 2:
                raise
            log.warning("Concurrent store of %s/%s; retrying", organization_id, logical_key)
    raise AssertionError("unreachable")


def archive_documents(organization_id: str, key_prefix: str, *, new_owner: str,
                      readers: Sequence[str | Mapping[str, str] | Reader] = (), archived_by: str,
                      correlation_id: str | None = None, store_url: str | None = None) -> list[dict[str, Any]]:
    """Offboarding: hand every document under ``key_prefix`` (e.g. ``hires/42/``) to ``new_owner``, add
    ``readers`` and tag it ``archived=true``. Versions and their bytes stay as they are; re-running
    changes nothing more (new readers write ``document.shared``). Returns ``[{document_id, logical_key,
    previous_owner}]``."""
    if not key_prefix.endswith("/") or len(key_prefix) < 2:
        raise DocumentError(f"key_prefix must name a folder ending in '/', got {key_prefix!r}")
    parsed = [Reader.parse(r) for r in readers]
    escaped = key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    moved = []
    with session_scope(store_url) as session:
        rows = session.scalars(select(Document).where(
            Document.organization_id == organization_id,
            Document.logical_key.like(escaped + "%", escape="\\")).order_by(Document.logical_key))
        for document in rows:
            moved.append({"document_id": document.id, "logical_key": document.logical_key,
                          "previous_owner": document.owner})
            added = add_readers(session, document.id, parsed, granted_by=archived_by)
            events.readers_added(session, document, added, correlation_id=correlation_id)
            if document.owner != new_owner or (document.tags or {}).get("archived") != "true":
                document.owner = new_owner
                document.tags = {**(document.tags or {}), "archived": "true"}
                document.updated_at = utcnow()
                audit("document.archived", actor=archived_by, resource_type="document", resource_id=document.id,
                      outcome="success", session=session, organization_id=document.organization_id,
                      new_owner=new_owner, logical_key=document.logical_key)
    log.info("Archived %d document(s) under %s/%s for %s", len(moved), organization_id, key_prefix, new_owner)
    return moved


def _stored(row: DocumentVersion, created: bool = True) -> StoredVersion:
    return StoredVersion(document_id=row.document_id, version=row.version, storage_uri=row.storage_uri,
                         storage_version_id=row.storage_version_id, checksum=row.checksum_sha256,
                         size=row.size_bytes, content_type=row.content_type, created=created)


def read_version(document_id: str, version: int | None = None, *, store_url: str | None = None) -> bytes:
    """The bytes of a version (the current one by default), checked against the recorded checksum."""
    return read_file(document_id, version, store_url=store_url)[0]


def read_file(document_id: str, version: int | None = None, *,
              store_url: str | None = None) -> tuple[bytes, str, str]:
    """``(bytes, file name, content type)`` of a version (e.g. to attach it), checksum-verified."""
    with session_scope(store_url) as session:
        row = get_version(session, document_id, version)
        document = session.get(Document, document_id)
        assert document is not None  # get_version found one of its versions
        name = filename_for(document, row)
    data = storage_for(row.storage_uri).read(row.storage_uri, row.storage_version_id)
    if sha256_hex(data) != row.checksum_sha256:
        raise DocumentError(f"document {document_id} version {row.version}: stored bytes do not match the checksum")
    return data, name, row.content_type


def get_version(session: Session, document_id: str, version: int | None = None) -> DocumentVersion:
    document = session.get(Document, document_id)
    if document is None or document.deleted_at is not None:  # a deleted document is kept for restore only
        raise LookupError(f"document {document_id!r} not found")
    number = version if version is not None else document.current_version
    row = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id,
                                                        DocumentVersion.version == number)).first()
    if row is None:
        raise LookupError(f"document {document_id!r} has no version {number}")
    return row


def filename_for(document: Document, row: DocumentVersion) -> str:
    base = document.logical_key.rsplit("/", 1)[-1]
    extension = mimetypes.guess_extension(row.content_type) or ""
    if extension and not base.endswith(extension):
        base += extension
    return base
