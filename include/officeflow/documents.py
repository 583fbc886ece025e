"""Documents: render templates to PDF, store versions on S3 (or a local folder), share, authorise.

Rendering
    ``include/templates/documents/<template>.html.j2`` (Jinja, StrictUndefined, HTML auto-escaped) is
    rendered to the HTML subset fpdf2 understands and laid out as an A4 PDF with a header (company,
    title) and numbered footer. Output is byte-for-byte deterministic for the same inputs and
    ``created_at``, so a retried task produces the same checksum.

Storage (``OFFICEFLOW_DOCUMENTS_URL``)
    ``s3://bucket/prefix``: through the amazon provider's :class:`S3Hook` and the Airflow connection
    ``OFFICEFLOW_DOCUMENTS_AWS_CONN_ID`` (``officeflow_s3``; MinIO or AWS, ``endpoint_url`` in its extra).
    A bucket with versioning *Enabled* keeps one object per document and the S3 ``VersionId`` of each
    version is recorded; otherwise every version gets its own key ``<key>/v<N>``.
    Anything else (a path or ``file://`` URI, default ``OFFICEFLOW_DOCUMENTS_DIR``): a local folder with
    ``<key>/v<N>`` files (dev mode). Every upload is read back and its SHA-256 compared before the version
    is recorded.

Versions (``documents`` / ``document_versions``)
    One document per ``(organization_id, logical_key)``; each store adds version ``current_version + 1``
    while holding the document's row lock (``SELECT … FOR UPDATE``; SQLite serialises writers), so
    concurrent stores get distinct numbers and explicit keys are never overwritten by another version.
    Retries: a store from the same dag run, task and map index with the same content returns the version
    already recorded instead of adding another (``task_id`` is recorded as ``task`` or ``task[map_index]``).

Access
    The owner, admins, and listed readers (``user:``, ``group:`` or ``role:`` principals) may read a
    document's metadata and create share links (presigned GET URLs, S3 only). Shares are audited.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlparse

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.officeflow.settings import get_settings
from include.officeflow.store import AuditLog, Document, DocumentReader, DocumentVersion, session_scope
from include.officeflow.store.models import new_id, utcnow

log = logging.getLogger(__name__)

PDF = "application/pdf"
PRINCIPAL_TYPES = ("user", "group", "role")
DEFAULT_SHARE_SECONDS = 7 * 86_400
_LOGICAL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ORGANIZATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


class DocumentError(ValueError):
    """Bad input or a failed integrity check; nothing was recorded."""


class SharingUnavailable(DocumentError):
    """The version's storage cannot produce share links (local dev-mode folder)."""


# --- rendering ------------------------------------------------------------------------------------


def render_html(template: str, variables: Mapping[str, Any]) -> str:
    """Render ``include/templates/documents/<template>.html.j2``.

    Raises ``jinja2.UndefinedError`` for a missing variable, ``jinja2.TemplateNotFound`` for an unknown
    template and :class:`DocumentError` for a malformed template name.
    """
    from include.officeflow.templating import environment

    if not _TEMPLATE_NAME.match(template or ""):
        raise DocumentError(f"template name must match {_TEMPLATE_NAME.pattern}, got {template!r}")
    return environment("documents").get_template(f"{template}.html.j2").render(**variables)


@lru_cache(maxsize=1)
def _unicode_font_dir() -> Path | None:
    configured = get_settings().documents_font_dir
    for folder in ((configured,) if configured else _FONT_DIRS):
        if (folder / "DejaVuSans.ttf").is_file() and (folder / "DejaVuSans-Bold.ttf").is_file():
            return folder
    if configured:
        raise DocumentError(f"OFFICEFLOW_DOCUMENTS_FONT_DIR={configured} has no DejaVuSans.ttf / DejaVuSans-Bold.ttf")
    return None


def render_pdf(html: str, *, title: str, company: str = "", author: str = "OfficeFlow",
               created_at: datetime | None = None) -> bytes:
    """Lay out rendered template HTML as an A4 PDF; deterministic for fixed ``created_at``.

    Uses DejaVu Sans (Unicode) when available, else the PDF core font Helvetica, which only covers
    Latin-1: text outside it is then a :class:`DocumentError` rather than silently dropped glyphs.
    """
    from fpdf import FPDF
    from fpdf.errors import FPDFUnicodeEncodingException

    font_dir = _unicode_font_dir()
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting logs every glyph table at INFO

    class _Pdf(FPDF):
        def header(self) -> None:
            self.set_font(family, "B", 9)
            self.set_text_color(90, 90, 90)
            self.cell(0, 6, company or "", align="L")
            self.cell(0, 6, title, align="R", new_x="LMARGIN", new_y="NEXT")
            self.set_draw_color(200, 200, 200)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.ln(6)
            self.set_text_color(0, 0, 0)
            self.set_font(family, "", 11)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font(family, "", 8)
            self.set_text_color(120, 120, 120)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _Pdf(format="A4")
    if font_dir is not None:
        family = "DejaVu"
        pdf.add_font(family, "", str(font_dir / "DejaVuSans.ttf"))
        pdf.add_font(family, "B", str(font_dir / "DejaVuSans-Bold.ttf"))
        for style, name in (("I", "DejaVuSans-Oblique.ttf"), ("BI", "DejaVuSans-BoldOblique.ttf")):
            pdf.add_font(family, style, str(font_dir / (name if (font_dir / name).is_file() else "DejaVuSans.ttf")))
    else:
        family = "Helvetica"
    pdf.set_creation_date(created_at or datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("OfficeFlow")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font(family, "", 11)
    try:
        pdf.write_html(html, font_family=family)
        return bytes(pdf.output())
    except FPDFUnicodeEncodingException as exc:
        raise DocumentError(f"text outside Latin-1 needs a Unicode font (install fonts-dejavu-core or set "
                            f"OFFICEFLOW_DOCUMENTS_FONT_DIR): {exc}") from None


def render_document(template: str, variables: Mapping[str, Any], *, title: str,
                    created_at: datetime | None = None) -> bytes:
    """Render a document template straight to PDF bytes (``company_name`` feeds the page header)."""
    html = render_html(template, variables)
    return render_pdf(html, title=title, company=str(variables.get("company_name", "")), created_at=created_at)


# --- storage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PutResult:
    storage_uri: str
    storage_version_id: str | None


class Storage(Protocol):
    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult: ...

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes: ...

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str: ...


class LocalStorage:
    """Dev mode: ``<root>/<org>/<logical_key>/v<N>`` files, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult:
        target = self.root / object_key / f"v{version}"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PutResult(target.as_uri(), None)

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes:
        return Path(unquote(urlparse(storage_uri).path)).read_bytes()

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str:
        raise SharingUnavailable("share links need S3 storage (OFFICEFLOW_DOCUMENTS_URL=s3://…); this version "
                                 "is in a local dev-mode folder")


class S3Storage:
    """S3 / MinIO through the amazon provider's ``S3Hook`` (connection ``conn_id``)."""

    def __init__(self, bucket: str, prefix: str = "", conn_id: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.conn_id = conn_id or get_settings().documents_aws_conn_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from botocore.config import Config

            hook = S3Hook(aws_conn_id=self.conn_id)
            # SigV4 for presigned URLs (boto3 still presigns S3 with SigV2, which AWS is retiring);
            # the connection's own config_kwargs (timeouts, addressing style) are kept.
            self._client = hook.get_client_type(config=hook.config.merge(Config(signature_version="s3v4")))
        return self._client

    def versioned(self) -> bool:
        """Whether the bucket's versioning is Enabled (Suspended or never enabled → explicit keys)."""
        return self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") == "Enabled"

    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult:
        key = "/".join(p for p in (self.prefix, object_key) if p)
        versioned = self.versioned()
        if not versioned:
            key = f"{key}/v{version}"
        response = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),  # the server verifies it too
            Metadata={"sha256": sha256_hex, "officeflow-version": str(version)},
        )
        version_id = response.get("VersionId") if versioned else None
        if versioned and not version_id:
            raise DocumentError(f"bucket {self.bucket!r} reports versioning Enabled but returned no VersionId")
        return PutResult(f"s3://{self.bucket}/{key}", version_id)

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes:
        bucket, key = parse_s3_uri(storage_uri)
        extra = {"VersionId": storage_version_id} if storage_version_id else {}
        body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str:
        bucket, key = parse_s3_uri(storage_uri)
        params: dict[str, Any] = {
            "Bucket": bucket, "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        }
        if storage_version_id:
            params["VersionId"] = storage_version_id
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise DocumentError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def configured_storage() -> Storage:
    """The storage new versions go to (``OFFICEFLOW_DOCUMENTS_URL``, else the dev-mode folder)."""
    settings = get_settings()
    url = settings.documents_url.strip()
    if url.startswith("s3://"):
        bucket, prefix = parse_s3_uri(url)
        return S3Storage(bucket, prefix, settings.documents_aws_conn_id)
    if url.startswith("file://"):
        return LocalStorage(Path(unquote(urlparse(url).path)))
    if url:
        if "://" in url:
            raise DocumentError(f"OFFICEFLOW_DOCUMENTS_URL must be s3://bucket/prefix, file:// or a path: {url!r}")
        return LocalStorage(Path(url))
    assert settings.documents_dir is not None
    return LocalStorage(settings.documents_dir)


def storage_for(storage_uri: str) -> Storage:
    """The storage holding an already recorded version (its own bucket, whatever is configured now)."""
    if storage_uri.startswith("s3://"):
        bucket, _ = parse_s3_uri(storage_uri)
        return S3Storage(bucket)
    if storage_uri.startswith("file://"):
        return LocalStorage(Path("/"))
    raise DocumentError(f"unknown storage URI {storage_uri!r}")


# --- store ----------------------------------------------------------------------------------------


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
class Reader:
    principal_type: str
    principal: str

    @classmethod
    def parse(cls, value: str | Mapping[str, str] | Reader) -> Reader:
        """``"role:hr"``, ``{"type": "user", "name": "ada"}`` or a :class:`Reader`."""
        if isinstance(value, Reader):
            kind, name = value.principal_type, value.principal
        elif isinstance(value, Mapping):
            kind, name = str(value.get("type", "")), str(value.get("name", ""))
        else:
            kind, _, name = str(value).partition(":")
        kind, name = kind.strip().lower(), name.strip()
        if kind not in PRINCIPAL_TYPES or not name or len(name) > 255:
            raise DocumentError(f"reader must be user:<name>, group:<name> or role:<name>, got {value!r}")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.principal_type}:{self.principal}"


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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _validate(organization_id: str, logical_key: str, title: str, owner: str, content_type: str,
              tags: Mapping[str, Any]) -> None:
    if not _ORGANIZATION.match(organization_id or ""):
        raise DocumentError(f"organization_id must match {_ORGANIZATION.pattern}, got {organization_id!r}")
    if not logical_key or len(logical_key) > 512 or not _LOGICAL_KEY.match(logical_key) or ".." in logical_key:
        raise DocumentError("logical_key must be 1-512 characters of letters, digits, '.', '_', '-' in "
                            f"'/'-separated segments (no '..'), got {logical_key!r}")
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


def add_readers(session: Session, document_id: str, readers: Iterable[Reader], granted_by: str) -> list[Reader]:
    existing = {Reader(r.principal_type, r.principal) for r in
                session.scalars(select(DocumentReader).where(DocumentReader.document_id == document_id))}
    added = []
    for reader in readers:
        if reader not in existing:
            session.add(DocumentReader(document_id=document_id, principal_type=reader.principal_type,
                                       principal=reader.principal, granted_by=granted_by))
            existing.add(reader)
            added.append(reader)
    return added


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
    store_url: str | None = None,
    storage: Storage | None = None,
) -> StoredVersion:
    """Store ``data`` as the next version of the document ``(organization_id, logical_key)``.

    The upload happens under the document's row lock and is read back and checksummed before the version
    row commits; on any error nothing is recorded. The document keeps its first owner; ``title`` and
    ``tags`` (merged) follow the latest store; ``readers`` are added to the document's readers.
    """
    tags = dict(tags or {})
    _validate(organization_id, logical_key, title, owner, content_type, tags)
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
                add_readers(session, document.id, parsed_readers, granted_by=creator)
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
                      store_url: str | None = None) -> list[dict[str, Any]]:
    """Offboarding: hand every document under ``key_prefix`` (e.g. ``hires/42/``) to ``new_owner``, add
    ``readers`` and tag it ``archived=true``. Versions and their bytes stay as they are; re-running
    changes nothing more. Returns ``[{document_id, logical_key, previous_owner}]``."""
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
            add_readers(session, document.id, parsed, granted_by=archived_by)
            if document.owner != new_owner or (document.tags or {}).get("archived") != "true":
                document.owner = new_owner
                document.tags = {**(document.tags or {}), "archived": "true"}
                document.updated_at = utcnow()
                session.add(AuditLog(actor=archived_by, action="document.archived", resource_type="document",
                                     resource_id=document.id, outcome="success",
                                     details={"new_owner": new_owner, "logical_key": document.logical_key}))
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
    if document is None:
        raise LookupError(f"document {document_id!r} not found")
    number = version if version is not None else document.current_version
    row = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id,
                                                        DocumentVersion.version == number)).first()
    if row is None:
        raise LookupError(f"document {document_id!r} has no version {number}")
    return row


# --- access and sharing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user name, their roles and groups, and whether the auth manager makes them admin."""

    name: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    is_admin: bool = False


def readers_of(session: Session, document_id: str) -> list[Reader]:
    rows = session.scalars(select(DocumentReader).where(DocumentReader.document_id == document_id)
                           .order_by(DocumentReader.principal_type, DocumentReader.principal))
    return [Reader(r.principal_type, r.principal) for r in rows]


def can_read(document: Document, readers: Iterable[Reader], who: Principal) -> bool:
    if who.is_admin or document.owner == who.name:
        return True
    for reader in readers:
        if ((reader.principal_type == "user" and reader.principal == who.name)
                or (reader.principal_type == "role" and reader.principal.lower() in {r.lower() for r in who.roles})
                or (reader.principal_type == "group" and reader.principal in who.groups)):
            return True
    return False


def can_manage(document: Document, who: Principal) -> bool:
    """Changing readers is for the owner and admins only."""
    return who.is_admin or document.owner == who.name


def share_seconds(expires_in: int | float | timedelta | None) -> int:
    """Validate a share lifetime: default 7 days (capped by the maximum), 1 s … the configured maximum."""
    maximum = get_settings().document_share_max_seconds
    if expires_in is None:
        return min(DEFAULT_SHARE_SECONDS, maximum)
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else float(expires_in)
    if seconds != int(seconds) or not 1 <= seconds <= maximum:
        raise DocumentError(f"expires_in must be a whole number of seconds from 1 to {maximum} "
                            f"(OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS), got {seconds:g}")
    return int(seconds)


def filename_for(document: Document, row: DocumentVersion) -> str:
    base = document.logical_key.rsplit("/", 1)[-1]
    extension = mimetypes.guess_extension(row.content_type) or ""
    if extension and not base.endswith(extension):
        base += extension
    return base


@dataclass(frozen=True)
class ShareLink:
    document_id: str
    version: int
    url: str
    expires_at: datetime
    expires_in_seconds: int


def share_document(document_id: str, version: int | None = None, expires_in: int | float | timedelta | None = None,
                   *, actor: str, correlation_id: str | None = None, store_url: str | None = None) -> ShareLink:
    """A presigned GET URL for a version (current by default), recorded in the audit log (without the URL)."""
    seconds = share_seconds(expires_in)
    with session_scope(store_url) as session:
        row = get_version(session, document_id, version)
        document = session.get(Document, document_id)
        assert document is not None
        url = storage_for(row.storage_uri).presign(row.storage_uri, row.storage_version_id, seconds,
                                                   filename_for(document, row), row.content_type)
        expires_at = utcnow() + timedelta(seconds=seconds)
        session.add(AuditLog(actor=actor, action="document.shared", resource_type="document",
                             resource_id=document_id, outcome="success", correlation_id=correlation_id,
                             details={"version": row.version, "expires_at": expires_at.isoformat(),
                                      "expires_in_seconds": seconds,
                                      "url_sha256": sha256_hex(url.encode())}))
        return ShareLink(document_id, row.version, url, expires_at, seconds)


def audit(action: str, *, actor: str, resource_id: str | None, outcome: str, correlation_id: str | None = None,
          store_url: str | None = None, **details: Any) -> None:
    """Append one document audit record in its own transaction."""
    with session_scope(store_url) as session:
        session.add(AuditLog(actor=actor, action=action, resource_type="document", resource_id=resource_id,
                             outcome=outcome, correlation_id=correlation_id, details=details))


def guess_content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
