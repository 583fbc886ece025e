"""Share links: presigned GET URLs for a version (S3 storage only), each recorded in the audit log and as a
``com.officeflow.document.shared`` domain event (in one transaction).

A link is a bearer link: whoever holds it downloads the version until it expires. The audit record
holds a hash of the URL, never the URL itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from include.officeflow.audit import audit
from include.officeflow.documents import events
from include.officeflow.documents.errors import DocumentError
from include.officeflow.documents.storage import sha256_hex, storage_for
from include.officeflow.documents.versions import filename_for, get_version
from include.officeflow.settings import get_settings
from include.officeflow.store import Document, session_scope
from include.officeflow.store.models import utcnow

DEFAULT_SHARE_SECONDS = 7 * 86_400


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


@dataclass(frozen=True)
class ShareLink:
    document_id: str
    version: int
    url: str
    expires_at: datetime
    expires_in_seconds: int


def share_document(document_id: str, version: int | None = None, expires_in: int | float | timedelta | None = None,
                   *, actor: str, correlation_id: str | None = None, store_url: str | None = None,
                   source_ip: str | None = None) -> ShareLink:
    """A presigned GET URL for a version (current by default), recorded in the audit log (without the URL)."""
    seconds = share_seconds(expires_in)
    with session_scope(store_url) as session:
        row = get_version(session, document_id, version)
        document = session.get(Document, document_id)
        assert document is not None
        url = storage_for(row.storage_uri).presign(row.storage_uri, row.storage_version_id, seconds,
                                                   filename_for(document, row), row.content_type)
        expires_at = utcnow() + timedelta(seconds=seconds)
        audit("document.shared", actor=actor, resource_type="document", resource_id=document_id, outcome="success",
              correlation_id=correlation_id, session=session, organization_id=document.organization_id,
              source_ip=source_ip, version=row.version,
              expires_at=expires_at.isoformat(), expires_in_seconds=seconds, url_sha256=sha256_hex(url.encode()))
        events.link_created(session, document, row.version, expires_at, seconds, correlation_id=correlation_id)
        return ShareLink(document_id, row.version, url, expires_at, seconds)
