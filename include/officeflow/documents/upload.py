"""Uploads: a ``multipart/form-data`` body received chunk by chunk, its file part spooled to a temporary
file while its SHA-256 is computed, then stored as a new document or the next version of one.

Nothing is held in memory beyond one chunk: :class:`MultipartReceiver` is fed the request body as it
arrives and stops at the first byte over the size limit (:class:`UploadTooLarge`, nothing stored). The
store steps write the bytes with :meth:`Storage.put_file` under the document's row lock and record the
version (and its audit entry) in the same transaction, so a failed upload records nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.officeflow.audit import audit
from include.officeflow.documents import events
from include.officeflow.documents.access import Reader, add_readers
from include.officeflow.documents.errors import DocumentError
from include.officeflow.documents.metadata import validate_metadata, validate_tags
from include.officeflow.documents.storage import Storage, configured_storage
from include.officeflow.documents.versions import StoredVersion, validate_document
from include.officeflow.store import Document, DocumentVersion, session_scope
from include.officeflow.store.models import new_id, utcnow

log = logging.getLogger(__name__)

FILE_FIELD = "file"
MAX_FIELD_BYTES = 65_536  # a text field (title, tags, metadata JSON)
MAX_FIELDS = 200
MAX_FILENAME = 255


class UploadTooLarge(DocumentError):
    """The file is larger than ``OFFICEFLOW_DOCUMENTS_MAX_UPLOAD_BYTES``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the upload limit of {limit} bytes "
                         "(OFFICEFLOW_DOCUMENTS_MAX_UPLOAD_BYTES)")
        self.limit = limit


class MalformedUpload(DocumentError):
    """The body is not the expected multipart form (no file, two files, a broken body, a field too long)."""


class DocumentExists(DocumentError):
    """An upload named a logical key that a document of the organization already has."""


class DocumentGone(LookupError):
    """The document does not exist (any more) or is deleted."""


@dataclass
class SpooledFile:
    """The uploaded file in a temporary file: its size, SHA-256, name and declared type."""

    path: Path
    size: int
    sha256: str
    filename: str | None
    declared_type: str | None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Received:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: SpooledFile | None = None

    def one(self, name: str) -> str | None:
        """A field given at most once (``None`` when absent)."""
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise MalformedUpload(f"form field {name!r} given {len(values)} times; give it once")
        return values[0] if values else None

    def many(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


class MultipartReceiver:
    """Parses a ``multipart/form-data`` body fed chunk by chunk (:meth:`feed`, then :meth:`finish`).

    The one part named ``file`` goes to a temporary file, hashed as it is written; other parts are short
    text fields. Call :meth:`discard` on any error to remove the temporary file.
    """

    def __init__(self, content_type: str | None, max_file_bytes: int) -> None:
        kind, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise MalformedUpload("the body must be multipart/form-data with a boundary "
                                  "(e.g. curl -F file=@contract.pdf -F title=...)")
        self.max_file_bytes = max_file_bytes
        self.received = Received()
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_part_data": self._part_data, "on_part_end": self._part_end,
            "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished,
        })
        self._pending_name = b""
        self._pending_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._handle: BinaryIO | None = None
        self._digest: Any = None
        self._size = 0
        self._fields = 0

    # --- feeding --------------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise MalformedUpload(f"malformed multipart body: {exc}") from None

    def finish(self) -> Received:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise MalformedUpload(f"malformed multipart body: {exc}") from None
        if self._handle is not None:  # the body ended inside the file part
            raise MalformedUpload("the multipart body ends before the file part does")
        return self.received

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.received.file is not None:
            self.received.file.discard()

    # --- parser callbacks -----------------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers, self._text = {}, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._pending_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._pending_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._pending_name.strip().lower()] = self._pending_value.strip()
        self._pending_name, self._pending_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise MalformedUpload("a multipart part has no Content-Disposition name")
        self._name = options[b"name"].decode("utf-8", "replace")
        self._fields += 1
        if self._fields > MAX_FIELDS:
            raise MalformedUpload(f"more than {MAX_FIELDS} form fields")
        if self._name != FILE_FIELD:
            return
        if self.received.file is not None:
            raise MalformedUpload("one file per upload: the form has more than one 'file' part")
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        declared = self._headers.get(b"content-type", b"").decode("latin-1") or None
        fd, name = tempfile.mkstemp(prefix="officeflow-upload-")
        self._handle = os.fdopen(fd, "wb")
        self._digest, self._size = hashlib.sha256(), 0
        self.received.file = SpooledFile(Path(name), 0, "", _clean_filename(filename), declared)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._handle is None:
            if len(self._text) + end - start > MAX_FIELD_BYTES:
                raise MalformedUpload(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")
            self._text += data[start:end]
            return
        self._size += end - start
        if self._size > self.max_file_bytes:
            raise UploadTooLarge(self.max_file_bytes)
        piece = data[start:end]
        self._digest.update(piece)
        self._handle.write(piece)

    def _part_end(self) -> None:
        if self._handle is not None and self._name == FILE_FIELD:
            self._handle.close()
            self._handle = None
            spooled = self.received.file
            assert spooled is not None
            spooled.size, spooled.sha256 = self._size, self._digest.hexdigest()
            return
        try:
            value = self._text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedUpload(f"form field {self._name!r} is not UTF-8 text") from None
        self.received.fields.setdefault(self._name, []).append(value)


def _clean_filename(name: str) -> str | None:
    """The file's base name (browsers on Windows may send a full path), without control characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"').strip()
    return base[:MAX_FILENAME] or None


def key_for(filename: str | None) -> str:
    """A logical key for an upload that names none: ``uploads/<uuid>/<file name made safe>``."""
    safe = re.sub(r"[^A-Za-z0-9._\-]+", "_", filename or "").strip("._-")[:200] or "document"
    return f"uploads/{new_id()}/{safe}"


def _version_row(document: Document, number: int, upload: SpooledFile, content_type: str, put: Any,
                 created_by: str) -> DocumentVersion:
    return DocumentVersion(document_id=document.id, version=number, storage_uri=put.storage_uri,
                           storage_version_id=put.storage_version_id, checksum_sha256=upload.sha256,
                           size_bytes=upload.size, content_type=content_type, created_by=created_by,
                           filename=upload.filename)


def _stored(row: DocumentVersion) -> StoredVersion:
    return StoredVersion(document_id=row.document_id, version=row.version, storage_uri=row.storage_uri,
                         storage_version_id=row.storage_version_id, checksum=row.checksum_sha256,
                         size=row.size_bytes, content_type=row.content_type)


def create_document(upload: SpooledFile, content_type: str, *, organization_id: str, logical_key: str | None,
                    title: str, owner: str, tags: Mapping[str, Any] | None = None,
                    metadata: Mapping[str, Any] | None = None, readers: Sequence[str | Reader] = (),
                    correlation_id: str | None = None, source_ip: str | None = None,
                    storage: Storage | None = None, store_url: str | None = None) -> StoredVersion:
    """A new document with ``upload`` as version 1 (audited ``document.uploaded``; ``document.stored``, and
    ``document.shared`` for its readers, in the same transaction).

    Raises :class:`DocumentExists` when the organization already has a document with ``logical_key``
    (a deleted one too, until it is purged): a new version goes to ``POST /documents/{id}/versions``.
    """
    key = logical_key or key_for(upload.filename)
    tags_ = validate_tags(tags or {})
    metadata_ = validate_metadata(metadata or {})
    validate_document(organization_id, key, title, owner, content_type, tags_)
    parsed = [Reader.parse(r) for r in readers]
    if upload.size <= 0:
        raise DocumentError("the file is empty")
    storage = storage or configured_storage()
    actor = f"user:{owner}"
    try:
        with session_scope(store_url) as session:
            taken = session.scalar(select(Document.id).where(Document.organization_id == organization_id,
                                                             Document.logical_key == key))
            if taken is not None:
                raise DocumentExists(f"organization {organization_id!r} already has a document with logical_key "
                                     f"{key!r} ({taken}); upload a new version to POST /documents/{taken}/versions")
            now = utcnow()
            document = Document(id=new_id(), organization_id=organization_id, logical_key=key, title=title,
                                owner=owner, tags=tags_, meta=metadata_, current_version=1, created_at=now,
                                updated_at=now)
            session.add(document)
            session.flush()  # claims the key (a concurrent upload of the same key fails here, before any bytes)
            put = storage.put_file(f"{organization_id}/{key}", 1, upload.path, content_type, upload.sha256)
            row = _version_row(document, 1, upload, content_type, put, actor)
            session.add(row)
            added = add_readers(session, document.id, parsed, granted_by=actor)
            session.flush()
            events.stored(session, document, row, source="upload", correlation_id=correlation_id)
            events.readers_added(session, document, added, correlation_id=correlation_id)
            audit("document.uploaded", actor=actor, resource_type="document", resource_id=document.id,
                  outcome="success", correlation_id=correlation_id, session=session,
                  organization_id=organization_id, source_ip=source_ip, version=1, logical_key=key,
                  size_bytes=upload.size, sha256=upload.sha256, content_type=content_type, filename=upload.filename)
            log.info("Uploaded document %s (%s/%s) version 1: %s, %d bytes, sha256 %s", document.id,
                     organization_id, key, put.storage_uri, upload.size, upload.sha256)
            return _stored(row)
    except IntegrityError:
        raise DocumentExists(f"organization {organization_id!r} already has a document with logical_key {key!r}") \
            from None


def add_version(document_id: str, upload: SpooledFile, content_type: str, *, actor: str,
                correlation_id: str | None = None, source_ip: str | None = None, storage: Storage | None = None,
                store_url: str | None = None) -> StoredVersion:
    """``upload`` as the document's next version (audited ``document.version_uploaded``; ``document.stored`` in
    the same transaction), under its row lock.

    Raises :class:`DocumentGone` when the document does not exist or was deleted meanwhile.
    """
    if upload.size <= 0:
        raise DocumentError("the file is empty")
    storage = storage or configured_storage()
    with session_scope(store_url) as session:
        document = session.scalars(select(Document).where(Document.id == document_id).with_for_update()).first()
        if document is None or document.deleted_at is not None:
            raise DocumentGone(f"document {document_id!r} not found")
        number = document.current_version + 1
        put = storage.put_file(f"{document.organization_id}/{document.logical_key}", number, upload.path,
                               content_type, upload.sha256)
        row = _version_row(document, number, upload, content_type, put, actor)
        session.add(row)
        document.current_version = number
        document.updated_at = utcnow()
        session.flush()
        events.stored(session, document, row, source="upload", correlation_id=correlation_id)
        audit("document.version_uploaded", actor=actor, resource_type="document", resource_id=document.id,
              outcome="success", correlation_id=correlation_id, session=session,
              organization_id=document.organization_id, source_ip=source_ip, version=number,
              size_bytes=upload.size, sha256=upload.sha256, content_type=content_type, filename=upload.filename)
        log.info("Uploaded document %s version %d: %s, %d bytes, sha256 %s", document.id, number, put.storage_uri,
                 upload.size, upload.sha256)
        return _stored(row)

