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
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from include.officeflow import documents as docs
from include.officeflow.audit import audit
from include.officeflow.auth.permissions import DOCUMENTS
from include.officeflow.store import Document, DocumentVersion, session_scope
from plugins.officeflow_gateway.auth import Caller, CreateDocuments, EditDocuments, ReadDocuments
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
RESOURCE_DOCUMENTS = DOCUMENTS


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
    current_version: int
    created_at: datetime
    updated_at: datetime


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


def _load(session: Any, document_id: str, caller: Caller) -> Document:
    """The document, or 404 when it does not exist or belongs to an organization the caller does not see."""
    document = session.get(Document, document_id)
    if document is None:
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
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    """Documents of the caller's organizations the caller may read, newest first, filtered by owner, tags and
    organization."""
    wanted = _parse_tags(tag)

    def work() -> DocumentList:
        who = principal_of(caller)
        with session_scope() as session:
            query = (select(Document).where(caller.scope(Document.organization_id))
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
        if add is not None:
            docs.add_readers(session, document_id, [add], granted_by=caller.actor)
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


__all__ = ["RESOURCE_DOCUMENTS", "router"]
