"""Documents: render templates to PDF, store versions on S3 (or a local folder), share, authorise.

One module per concern; this package exposes the names operators, DAGs and the gateway use:

- :mod:`.render`: templates to deterministic A4 PDFs (fpdf2);
- :mod:`.storage`: version bytes on S3 (the amazon provider's ``S3Hook``) or in a local folder;
- :mod:`.versions`: documents and versions in the store (row-locked numbering, retries, read-back),
  reading versions, archiving at offboarding;
- :mod:`.access`: readers and who may read or manage a document;
- :mod:`.sharing`: presigned share links, audited;
- :mod:`.content_type`: what an uploaded file is, from its bytes;
- :mod:`.upload`: streamed multipart uploads, stored as a new document or the next version;
- :mod:`.metadata`: title, tags and metadata edits (merge patches);
- :mod:`.retention`: soft delete, restore within retention, the purge;
- :mod:`.errors`: :class:`DocumentError`, :class:`SharingUnavailable`.

Audit records go through :func:`include.officeflow.audit.audit`.
"""

from include.officeflow.documents.access import (
    PRINCIPAL_TYPES,
    Principal,
    Reader,
    add_readers,
    can_manage,
    can_read,
    readers_of,
)
from include.officeflow.documents.errors import DocumentError, SharingUnavailable
from include.officeflow.documents.render import PDF, render_document, render_html, render_pdf, utc
from include.officeflow.documents.sharing import DEFAULT_SHARE_SECONDS, ShareLink, share_document, share_seconds
from include.officeflow.documents.storage import (
    LocalStorage,
    PutResult,
    S3Storage,
    Storage,
    configured_storage,
    guess_content_type,
    parse_s3_uri,
    sha256_hex,
    storage_for,
)
from include.officeflow.documents.versions import (
    RunRef,
    StoredVersion,
    archive_documents,
    filename_for,
    get_version,
    read_file,
    read_version,
    store_document,
)

__all__ = [
    "DEFAULT_SHARE_SECONDS",
    "PDF",
    "PRINCIPAL_TYPES",
    "DocumentError",
    "LocalStorage",
    "Principal",
    "PutResult",
    "Reader",
    "RunRef",
    "S3Storage",
    "ShareLink",
    "SharingUnavailable",
    "Storage",
    "StoredVersion",
    "add_readers",
    "archive_documents",
    "can_manage",
    "can_read",
    "configured_storage",
    "filename_for",
    "get_version",
    "guess_content_type",
    "parse_s3_uri",
    "read_file",
    "read_version",
    "readers_of",
    "render_document",
    "render_html",
    "render_pdf",
    "sha256_hex",
    "share_document",
    "share_seconds",
    "storage_for",
    "store_document",
    "utc",
]
