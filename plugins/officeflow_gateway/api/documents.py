"""``/officeflow/api/v1/documents``: document metadata and versions, share links, readers.

Two gates. The auth manager first: reading needs ``can_read`` on ``OfficeFlow Documents``, a share link
``can_create``, changing readers ``can_edit``. Then each document decides: allowed are its owner (the user
name), document admins (users the auth manager allows ``can_delete`` on ``OfficeFlow Documents``) and its
readers (``user:<name>``, ``role:<role>``, ``group:<FAB group or team>``). Others get 403 with the standard
error shape, and the denial is audited. Readers may read metadata and create share links; only the owner
and admins change readers. Every share is audited (without the URL, which is a bearer link).

Tenant isolation comes before both: a document of an organization the caller is not a member of does not
exist for the caller (404, also for admins of the document rules and for its readers), and the list holds
the caller's organizations only.

Uploads (``can_create``): ``POST /documents`` (a new document) and ``POST /documents/{id}/versions`` (owner
and admins), multipart bodies streamed to a temporary file and then to storage, refused over the size limit
(413) or when the bytes are not an accepted type or not the declared one (415); downloads (``can_read``,
owner, admins and readers) stream the bytes back; ``PATCH`` edits title, tags and metadata (``can_edit``,
owner and admins); ``DELETE`` and ``restore`` are for document admins (``can_delete``). A deleted document
does not exist for any route but ``restore`` and the admins' ``?deleted=true`` list.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AliasChoices, BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from include.officeflow import documents as docs
from include.officeflow.audit import audit
from include.officeflow.auth.permissions import DOCUMENTS
from include.officeflow.documents import content_type as types
from include.officeflow.documents import events as document_events
from include.officeflow.documents import metadata as meta
from include.officeflow.documents import retention
from include.officeflow.documents import upload as uploads
from include.officeflow.settings import get_settings
from include.officeflow.store import Document, DocumentVersion, session_scope
from plugins.officeflow_gateway.api import MAX_BIGINT, MAX_INT
from plugins.officeflow_gateway.auth import Caller, CreateDocuments, EditDocuments, ReadDocuments, authorized
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
RESOURCE_DOCUMENTS = DOCUMENTS
DeleteDocuments = Annotated[Caller, Depends(authorized("DELETE", DOCUMENTS))]
log = logging.getLogger(__name__)


class VersionOut(BaseModel):
    version: int
    storage_uri: str
    storage_version_id: str | None
    checksum_sha256: str
    size_bytes: int
    content_type: str
    template: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    created_by: str
    created_at: datetime
    filename: str | None = Field(default=None, description="The uploaded file's name (uploads only).")


class ReaderIn(BaseModel):
    type: Literal["user", "group", "role"]
    name: str = Field(min_length=1, max_length=255)


class DocumentOut(BaseModel):
    id: str
    organization_id: str
    logical_key: str
    title: str
    owner: str
    tags: dict[str, str]
    metadata: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("meta", "metadata"))
    current_version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None, description="Set while the document is deleted.")
    purge_after: datetime | None = Field(default=None, description="When a deleted document's bytes are purged; "
                                         "restorable until then.")


class DocumentDetail(DocumentOut):
    readers: list[ReaderIn]
    versions: list[VersionOut]


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total_entries: int


class ShareIn(BaseModel):
    version: int | None = Field(default=None, ge=1, description="Version to share; the current one if omitted.")
    expires_in_seconds: int | None = Field(
        default=None, ge=1,
        description="Link lifetime; 7 days by default, at most OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS.",
    )


class ShareOut(BaseModel):
    document_id: str
    version: int
    url: str
    expires_at: datetime
    expires_in_seconds: int


class ReaderList(BaseModel):
    readers: list[ReaderIn]


def _names(value: Any) -> set[str]:
    """Role / group / team names from a user attribute (a string, or objects with ``name``)."""
    if not value:
        return set()
    items = [value] if isinstance(value, str) else list(value)
    return {str(getattr(item, "name", item)) for item in items if item}


def _groups(user: Any) -> set[str]:
    """The user's groups: FAB groups (read from Airflow's database: the user object is detached from its
    session, and FAB loads groups lazily), or the ``groups`` / ``teams`` another auth manager gives."""
    from airflow.providers.fab.auth_manager.models import Group, User, assoc_user_group

    if isinstance(user, User):
        from airflow.utils.session import create_session

        with create_session() as session:
            return set(session.scalars(select(Group.name).join(assoc_user_group,
                                                               assoc_user_group.c.group_id == Group.id)
                                       .where(assoc_user_group.c.user_id == user.id)))
    return _names(getattr(user, "groups", None)) | _names(getattr(user, "teams", None))


def principal_of(caller: Caller) -> docs.Principal:
    """The caller as the document rules see it; document admins are those the auth manager allows to DELETE
    ``OfficeFlow Documents``."""
    user = caller.user
    return docs.Principal(
        name=caller.name,
        roles=frozenset(_names(getattr(user, "role", None)) | _names(getattr(user, "roles", None))),
        groups=frozenset(_groups(user)),
        is_admin=caller.can("DELETE", DOCUMENTS),
        organizations=caller.organizations,
    )


def _deny(document: Document, who: docs.Principal, operation: str, cid: str, caller: Caller) -> ApiError:
    audit("document.access_denied", actor=caller.actor, resource_type="document", resource_id=document.id,
          outcome="denied", correlation_id=cid, organization_id=document.organization_id,
          source_ip=caller.source_ip, operation=operation)
    return ApiError(403, "forbidden", f"user {who.name!r} may not {operation} document {document.id!r}")


def _load(session: Any, document_id: str, caller: Caller, *, deleted: bool = False, lock: bool = False) -> Document:
    """The document, or 404 when it does not exist, is deleted (unless ``deleted``) or belongs to an organization
    the caller does not see. ``lock``: row-locked until the transaction ends."""
    query = select(Document).where(Document.id == document_id)
    document = session.scalars(query.with_for_update() if lock else query).first()
    if document is None or (document.deleted_at is not None and not deleted):
        raise ApiError(404, "not_found", f"document {document_id!r} not found")
    caller.visible(document.organization_id, "document", document_id)
    return document


def _detail(session: Any, document: Document) -> DocumentDetail:
    versions = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document.id)
                               .order_by(DocumentVersion.version.desc()))
    return DocumentDetail(
        **DocumentOut.model_validate(document, from_attributes=True).model_dump(),
        readers=[ReaderIn(type=r.principal_type, name=r.principal)  # type: ignore[arg-type]
                 for r in docs.readers_of(session, document.id)],
        versions=[VersionOut.model_validate(v, from_attributes=True) for v in versions],
    )


def _parse_tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for value in values:
        name, sep, tag_value = value.partition(":")
        if not sep or not name:
            raise ApiError(422, "validation_error", f"tag must be name:value, got {value!r}")
        tags[name] = tag_value
    return tags


@router.get("", response_model=DocumentList)
async def list_documents(
    caller: ReadDocuments,
    owner: str | None = None,
    organization_id: str | None = None,
    tag: Annotated[list[str], Query(description="name:value; repeat to require several")] = [],  # noqa: B006
    deleted: Annotated[bool, Query(description="Only deleted documents (within retention); document admins.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> DocumentList:
    """Documents of the caller's organizations the caller may read, newest first, filtered by owner, tags and
    organization. Deleted documents are hidden; ``?deleted=true`` lists them instead (document admins)."""
    wanted = _parse_tags(tag)

    def work() -> DocumentList:
        who = principal_of(caller)
        if deleted and not who.is_admin:
            raise ApiError(403, "forbidden", "only document admins (DELETE on OfficeFlow Documents) list deleted "
                                             "documents")
        with session_scope() as session:
            query = (select(Document).where(caller.scope(Document.organization_id),
                                            Document.deleted_at.is_not(None) if deleted
                                            else Document.deleted_at.is_(None))
                     .order_by(Document.updated_at.desc(), Document.id))
            if owner:
                query = query.where(Document.owner == owner)
            if organization_id:
                query = query.where(Document.organization_id == organization_id)
            visible = []
            for document in session.scalars(query):  # tag and reader checks are done here, portably
                if any((document.tags or {}).get(k) != v for k, v in wanted.items()):
                    continue
                if who.is_admin or docs.can_read(document, docs.readers_of(session, document.id), who):
                    visible.append(document)
            page = visible[offset:offset + limit]
            return DocumentList(documents=[DocumentOut.model_validate(d, from_attributes=True) for d in page],
                                total_entries=len(visible))

    return await run_in_threadpool(work)


def _readable(session: Any, document_id: str, caller: Caller, action: str, cid: str) -> tuple[Any, list[Any]]:
    """The document and its readers, or 404 / an audited 403 when the caller may not read it."""
    document = _load(session, document_id, caller)
    readers = docs.readers_of(session, document_id)
    who = principal_of(caller)
    if not docs.can_read(document, readers, who):
        raise _deny(document, who, action, cid, caller)
    return document, readers


@router.get("/{document_id}", response_model=DocumentDetail)
async def get_document(document_id: str, request: Request, caller: ReadDocuments) -> DocumentDetail:
    """Metadata, readers and every version (newest first)."""
    cid = correlation_id(request)

    def work() -> DocumentDetail:
        with session_scope() as session:
            document, _ = _readable(session, document_id, caller, "read", cid)
            return _detail(session, document)

    return await run_in_threadpool(work)


@router.post("/{document_id}/share", response_model=ShareOut, status_code=201)
async def share_document(document_id: str, body: ShareIn, request: Request, caller: CreateDocuments) -> ShareOut:
    """A presigned download URL for a version; the share is audited (the URL itself is not stored)."""
    cid = correlation_id(request)

    def work() -> ShareOut:
        with session_scope() as session:
            _readable(session, document_id, caller, "share", cid)
        try:
            link = docs.share_document(document_id, body.version, body.expires_in_seconds, actor=caller.actor,
                                       correlation_id=cid, source_ip=caller.source_ip)
        except docs.SharingUnavailable as exc:
            raise ApiError(409, "sharing_unavailable", str(exc)) from None
        except docs.DocumentError as exc:
            raise ApiError(422, "validation_error", str(exc)) from None
        except LookupError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return ShareOut(document_id=link.document_id, version=link.version, url=link.url,
                        expires_at=link.expires_at, expires_in_seconds=link.expires_in_seconds)

    return await run_in_threadpool(work)


@router.get("/{document_id}/readers", response_model=ReaderList)
async def list_readers(document_id: str, request: Request, caller: ReadDocuments) -> ReaderList:
    cid = correlation_id(request)

    def work() -> ReaderList:
        with session_scope() as session:
            _, readers = _readable(session, document_id, caller, "read", cid)
            return ReaderList(readers=[ReaderIn(type=r.principal_type, name=r.principal)  # type: ignore[arg-type]
                                       for r in readers])

    return await run_in_threadpool(work)


def _change_readers(document_id: str, caller: Caller, cid: str, add: docs.Reader | None,
                    remove: docs.Reader | None) -> ReaderList:
    from include.officeflow.store import DocumentReader

    who = principal_of(caller)
    with session_scope() as session:
        document = _load(session, document_id, caller)
        organization_id = document.organization_id
        if not docs.can_manage(document, who):
            raise _deny(document, who, "change readers of", cid, caller)
        if add is not None:  # a reader added: document.shared in this transaction
            added = docs.add_readers(session, document_id, [add], granted_by=caller.actor)
            document_events.readers_added(session, document, added, correlation_id=cid)
        if remove is not None:
            row = session.get(DocumentReader, (document_id, remove.principal_type, remove.principal))
            if row is None:
                raise ApiError(404, "not_found", f"{remove} is not a reader of document {document_id!r}")
            session.delete(row)
        session.flush()
        readers = docs.readers_of(session, document_id)
    audit("document.readers_changed", actor=caller.actor, resource_type="document", resource_id=document_id,
          outcome="success", correlation_id=cid, organization_id=organization_id, source_ip=caller.source_ip,
          added=str(add) if add else None, removed=str(remove) if remove else None)
    return ReaderList(readers=[ReaderIn(type=r.principal_type, name=r.principal)  # type: ignore[arg-type]
                               for r in readers])


@router.post("/{document_id}/readers", response_model=ReaderList, status_code=201)
async def add_reader(document_id: str, body: ReaderIn, request: Request, caller: EditDocuments) -> ReaderList:
    """Grant read access to a user, group or role (owner and admins)."""
    cid = correlation_id(request)
    reader = docs.Reader(body.type, body.name.strip())
    return await run_in_threadpool(_change_readers, document_id, caller, cid, reader, None)


@router.delete("/{document_id}/readers/{principal_type}/{principal}", status_code=204)
async def remove_reader(document_id: str, principal_type: Literal["user", "group", "role"], principal: str,
                        request: Request, caller: EditDocuments) -> Response:
    """Revoke a reader (owner and admins). Share links already handed out stay valid until they expire."""
    cid = correlation_id(request)
    await run_in_threadpool(_change_readers, document_id, caller, cid, None, docs.Reader(principal_type, principal))
    return Response(status_code=204)


# --- uploads, downloads, edits, soft delete -------------------------------------------------------------------

_FORM_FIELDS: dict[str, Any] = {
    "file": {"type": "string", "format": "binary",
             "description": "The file: PDF, PNG, JPEG, DOCX, XLSX, UTF-8 text or CSV (checked from its bytes; its "
                            "part's Content-Type, if given, must agree)."},
}
_NEW_DOCUMENT_FIELDS: dict[str, Any] = {
    **_FORM_FIELDS,
    "title": {"type": "string", "maxLength": 500, "description": "Defaults to the file's name."},
    "organization_id": {"type": "string", "default": "default"},
    "logical_key": {"type": "string", "maxLength": 512,
                    "description": "Unique per organization, e.g. hires/42/contract ('/'-separated segments of "
                                   "at most 255 characters); "
                                   "uploads/<uuid>/<file> if omitted."},
    "tag": {"type": "array", "items": {"type": "string"}, "description": "name:value; repeat for several."},
    "metadata": {"type": "string", "description": "A JSON object (at most 16 KiB)."},
    "reader": {"type": "array", "items": {"type": "string"},
               "description": "user:<name>, group:<name> or role:<name>; repeat for several."},
}


def _form(properties: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": properties}}}}}


_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a multipart form, or a malformed one"},
    413: {"description": "The file is larger than OFFICEFLOW_DOCUMENTS_MAX_UPLOAD_BYTES; nothing stored"},
    415: {"description": "The bytes are not an accepted type, or not the declared one; the message names what "
                         "was detected"},
    422: {"description": "A field is invalid (empty file, bad tag, logical key, metadata)"},
}
FORM_OVERHEAD_BYTES = 1_048_576  # what a Content-Length may hold beyond the file: boundaries and text fields


class UploadOut(BaseModel):
    document_id: str
    version: int
    checksum_sha256: str
    size_bytes: int
    content_type: str
    document: DocumentDetail


class DocumentPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of the editable fields: a tag or metadata key set to null is removed."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    tags: dict[str, str | None] | None = None
    metadata: dict[str, Any] | None = None


class DeletedOut(BaseModel):
    id: str
    deleted_at: datetime
    purge_after: datetime


async def _receive(request: Request) -> uploads.Received:
    """The multipart body, its file spooled to a temporary file (SHA-256 computed on the way); 413 at the first
    byte over the limit, or at once from a Content-Length that says so."""
    limit = get_settings().documents_max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD_BYTES:
        raise ApiError(413, "payload_too_large", str(uploads.UploadTooLarge(limit)))
    try:
        receiver = uploads.MultipartReceiver(request.headers.get("content-type"), limit)
    except uploads.MalformedUpload as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    try:
        async for chunk in request.stream():
            await run_in_threadpool(receiver.feed, chunk)
        received = receiver.finish()
    except uploads.UploadTooLarge as exc:
        receiver.discard()
        raise ApiError(413, "payload_too_large", str(exc)) from None
    except uploads.MalformedUpload as exc:
        receiver.discard()
        raise ApiError(400, "invalid_body", str(exc)) from None
    except BaseException:
        receiver.discard()
        raise
    if received.file is None:
        raise ApiError(422, "validation_error", "file: a multipart part named 'file' is required")
    if received.file.size == 0:
        received.discard()
        raise ApiError(422, "validation_error", "file: the file is empty")
    return received


def _checked_type(spooled: uploads.SpooledFile) -> str:
    """The content type to record, from the bytes; 415 naming what was detected."""
    try:
        return types.resolve(types.detect(spooled.path), spooled.declared_type, spooled.filename)
    except types.ContentTypeError as exc:
        raise ApiError(415, exc.code, str(exc)) from None


def _uploaded(stored: docs.StoredVersion, caller: Caller) -> UploadOut:
    with session_scope() as session:
        document = _load(session, stored.document_id, caller)
        detail = _detail(session, document)
    return UploadOut(document_id=stored.document_id, version=stored.version, checksum_sha256=stored.checksum,
                     size_bytes=stored.size, content_type=stored.content_type, document=detail)


StoreUpload = Callable[[uploads.Received, uploads.SpooledFile], docs.StoredVersion]


async def _upload(request: Request, caller: Caller, store: StoreUpload) -> UploadOut:
    """What both uploads share: the multipart body received (400, 413, 422 before anything is stored), then in a
    worker thread ``store`` (the route's own part: its fields, the type check, the core call; a
    :class:`DocumentError` it raises is 422) and the answer; the spooled file is removed whatever happens."""
    received = await _receive(request)
    try:
        def work() -> UploadOut:
            spooled = received.file
            assert spooled is not None
            try:
                stored = store(received, spooled)
            except docs.DocumentError as exc:
                raise ApiError(422, "validation_error", str(exc)) from None
            return _uploaded(stored, caller)

        return await run_in_threadpool(work)
    finally:
        await run_in_threadpool(received.discard)


@router.post("", response_model=UploadOut, status_code=201, openapi_extra=_form(_NEW_DOCUMENT_FIELDS),
             responses=_UPLOAD_ERRORS)
async def upload_document(request: Request, caller: CreateDocuments) -> UploadOut:
    """Upload a file as a new document (version 1), owned by the caller. The body is streamed to storage, never
    held in memory; the answer carries the SHA-256 the server computed. Audited (``document.uploaded``)."""
    cid = correlation_id(request)

    def store(received: uploads.Received, spooled: uploads.SpooledFile) -> docs.StoredVersion:
        organization_id = received.one("organization_id") or "default"
        caller.check_organization(organization_id)
        title = (received.one("title") or spooled.filename or "").strip()
        tags = meta.parse_tags(received.many("tag"))
        metadata = meta.parse_metadata(received.one("metadata"))
        readers = [docs.Reader.parse(value) for value in received.many("reader")]
        logical_key = (received.one("logical_key") or "").strip() or None
        content_type = _checked_type(spooled)
        try:
            return uploads.create_document(
                spooled, content_type, organization_id=organization_id, logical_key=logical_key, title=title,
                owner=caller.name, tags=tags, metadata=metadata, readers=readers, correlation_id=cid,
                source_ip=caller.source_ip)
        except uploads.DocumentExists as exc:
            raise ApiError(409, "conflict", str(exc)) from None

    return await _upload(request, caller, store)


@router.post("/{document_id}/versions", response_model=UploadOut, status_code=201, openapi_extra=_form(_FORM_FIELDS),
             responses=_UPLOAD_ERRORS)
async def upload_version(document_id: str, request: Request, caller: CreateDocuments) -> UploadOut:
    """Upload a file as the document's next version (owner and admins); the document's current version moves
    on. Same checks as an upload. Audited (``document.version_uploaded``)."""
    cid = correlation_id(request)

    def check() -> None:  # before reading the body: who may, and does the document exist
        who = principal_of(caller)
        with session_scope() as session:
            document = _load(session, document_id, caller)
            if not docs.can_manage(document, who):
                raise _deny(document, who, "add a version to", cid, caller)

    def store(_: uploads.Received, spooled: uploads.SpooledFile) -> docs.StoredVersion:
        content_type = _checked_type(spooled)
        try:
            return uploads.add_version(document_id, spooled, content_type, actor=caller.actor, correlation_id=cid,
                                       source_ip=caller.source_ip)
        except uploads.DocumentGone:
            raise ApiError(404, "not_found", f"document {document_id!r} not found") from None

    await run_in_threadpool(check)
    return await _upload(request, caller, store)


def _content_disposition(filename: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _verified(chunks: Iterator[bytes], expected: str, document_id: str, version: int) -> Iterator[bytes]:
    """The stored bytes, the last chunk held back until the SHA-256 matches: a client never receives a
    complete body that differs from what was uploaded (the connection is cut instead)."""
    digest = hashlib.sha256()
    held: bytes | None = None
    for chunk in chunks:
        digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if digest.hexdigest() != expected:
        log.error("Document %s version %d: stored bytes do not match the checksum; download cut", document_id,
                  version)
        raise docs.DocumentError(f"document {document_id} version {version}: stored bytes do not match the checksum")
    if held is not None:
        yield held


@router.get("/{document_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The bytes, with Content-Type, Content-Length, ETag (the SHA-256) and "
                                            "Content-Disposition"},
                       403: {"description": "Not the owner, an admin or a reader (audited)"},
                       404: {"description": "No such document or version, or a deleted document"}})
async def download_document(document_id: str, request: Request, caller: ReadDocuments,
                            version: Annotated[int | None, Query(ge=1, le=MAX_INT,
                                                                 description="The current one if omitted.")] = None,
                            ) -> StreamingResponse:
    """Download a version (the current one by default), streamed from storage; owner, admins and readers.
    Audited (``document.downloaded``)."""
    cid = correlation_id(request)

    def work() -> tuple[DocumentVersion, str, Iterator[bytes]]:
        with session_scope() as session:
            document, _ = _readable(session, document_id, caller, "download", cid)
            number = version or document.current_version
            row = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id,
                                                                DocumentVersion.version == number)).first()
            if row is None:
                raise ApiError(404, "not_found", f"document {document_id!r} has no version {number}")
            filename = row.filename or docs.filename_for(document, row)
            organization_id = document.organization_id
            session.expunge(row)
        chunks = docs.storage_for(row.storage_uri).open(row.storage_uri, row.storage_version_id)
        audit("document.downloaded", actor=caller.actor, resource_type="document", resource_id=document_id,
              outcome="success", correlation_id=cid, organization_id=organization_id, source_ip=caller.source_ip,
              version=row.version, size_bytes=row.size_bytes)
        return row, filename, chunks

    row, filename, chunks = await run_in_threadpool(work)
    media_type = row.content_type + ("; charset=utf-8" if row.content_type.startswith("text/") else "")
    return StreamingResponse(
        _verified(chunks, row.checksum_sha256, document_id, row.version), media_type=media_type,
        headers={"Content-Length": str(row.size_bytes), "ETag": f'"{row.checksum_sha256}"',
                 "Content-Disposition": _content_disposition(filename), "X-Document-Version": str(row.version),
                 "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@router.patch("/{document_id}", response_model=DocumentDetail)
async def edit_document(document_id: str, body: DocumentPatch, request: Request,
                        caller: EditDocuments) -> DocumentDetail:
    """Edit title, tags and metadata (owner and admins): a merge patch, a key set to null is removed. Audited
    (``document.updated``) when something changed."""
    cid = correlation_id(request)

    def work() -> DocumentDetail:
        who = principal_of(caller)
        with session_scope() as session:
            document = _load(session, document_id, caller, lock=True)
            if not docs.can_manage(document, who):
                raise _deny(document, who, "edit", cid, caller)
            try:
                meta.apply_edit(session, document, meta.Edit(body.title, body.tags, body.metadata),
                                actor=caller.actor, correlation_id=cid, source_ip=caller.source_ip)
            except docs.DocumentError as exc:
                raise ApiError(422, "validation_error", str(exc)) from None
            session.flush()
            return _detail(session, document)

    return await run_in_threadpool(work)


@router.delete("/{document_id}", response_model=DeletedOut)
async def delete_document(document_id: str, request: Request, caller: DeleteDocuments) -> DeletedOut:
    """Delete a document (document admins): it disappears from lists, reads and downloads at once; its bytes are
    kept OFFICEFLOW_DOCUMENTS_RETENTION_DAYS (``purge_after``), restorable until then. Audited
    (``document.deleted``). Share links already handed out stay valid until they expire."""
    cid = correlation_id(request)

    def work() -> DeletedOut:
        with session_scope() as session:
            document = _load(session, document_id, caller, lock=True)
            purge_after = retention.soft_delete(session, document, actor=caller.actor, correlation_id=cid,
                                                source_ip=caller.source_ip)
            assert document.deleted_at is not None
            return DeletedOut(id=document.id, deleted_at=document.deleted_at, purge_after=purge_after)

    return await run_in_threadpool(work)


@router.post("/{document_id}/restore", response_model=DocumentDetail,
             responses={409: {"description": "The document is not deleted"},
                        410: {"description": "Its retention has ended: it can no longer be restored"}})
async def restore_document(document_id: str, request: Request, caller: DeleteDocuments) -> DocumentDetail:
    """Undo a delete within retention (document admins). Audited (``document.restored``)."""
    cid = correlation_id(request)

    def work() -> DocumentDetail:
        with session_scope() as session:
            document = _load(session, document_id, caller, deleted=True, lock=True)
            try:
                retention.restore(session, document, actor=caller.actor, correlation_id=cid,
                                  source_ip=caller.source_ip)
            except retention.NotDeleted as exc:
                raise ApiError(409, "conflict", str(exc)) from None
            except retention.RetentionExpired as exc:
                raise ApiError(410, "retention_expired", str(exc)) from None
            session.flush()
            return _detail(session, document)

    return await run_in_threadpool(work)


__all__ = ["RESOURCE_DOCUMENTS", "router"]
