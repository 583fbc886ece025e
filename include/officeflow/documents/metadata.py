"""A document's title, tags and free-form metadata: validation, and edits as JSON merge patches (RFC 7396).

Tags are short ``name: value`` strings (filters of the list: ``?tag=name:value``); metadata is any JSON
object up to 16 KiB. An edit names only what changes: a key set to ``null`` is removed, others replace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from include.officeflow.audit import audit
from include.officeflow.documents.errors import DocumentError
from include.officeflow.store import Document
from include.officeflow.store.models import utcnow

MAX_TAGS = 50
MAX_TAG_VALUE = 256
MAX_METADATA_BYTES = 16_384
_TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def validate_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise DocumentError("tags must be an object of name: value strings")
    for name, value in tags.items():
        if not isinstance(name, str) or not _TAG_NAME.match(name):
            raise DocumentError(f"tag name must match {_TAG_NAME.pattern}, got {name!r}")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise DocumentError(f"tag {name!r} must be a string of at most {MAX_TAG_VALUE} characters")
    if len(tags) > MAX_TAGS:
        raise DocumentError(f"at most {MAX_TAGS} tags, got {len(tags)}")
    return dict(tags)


def parse_tags(values: list[str]) -> dict[str, str]:
    """``["kind:contract", "employee_id:42"]`` (form fields, query parameters) → a tag map."""
    tags = {}
    for value in values:
        name, sep, tag_value = value.partition(":")
        if not sep or not name:
            raise DocumentError(f"tag must be name:value, got {value!r}")
        tags[name.strip()] = tag_value.strip()
    return validate_tags(tags)


def validate_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise DocumentError("metadata must be a JSON object")
    if any(not isinstance(key, str) or not key for key in metadata):
        raise DocumentError("metadata keys must be non-empty strings")
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise DocumentError(f"metadata must be at most {MAX_METADATA_BYTES} bytes of JSON, got {size}")
    return dict(metadata)


def parse_metadata(text: str | None) -> dict[str, Any]:
    """The ``metadata`` form field: a JSON object."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"metadata must be a JSON object: {exc}") from None
    return validate_metadata(value)


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396 on one level: ``null`` removes a key, anything else replaces it."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Edit:
    title: str | None = None
    tags: Mapping[str, str | None] | None = None
    metadata: Mapping[str, Any] | None = None


def apply_edit(session: Session, document: Document, edit: Edit, *, actor: str, correlation_id: str | None = None,
               source_ip: str | None = None) -> list[str]:
    """Apply ``edit`` to the (locked) document and audit it (``document.updated``, with the changed fields and
    tag names); returns the names of the fields that changed. Nothing changes on a validation error."""
    changes: dict[str, Any] = {}
    if edit.title is not None:
        title = edit.title.strip()
        if not title or len(title) > 500:
            raise DocumentError("title must be 1-500 characters")
        if title != document.title:
            changes["title"] = title
    if edit.tags is not None:
        tags = validate_tags(merge_patch(document.tags or {}, edit.tags))
        if tags != (document.tags or {}):
            changes["tags"] = tags
    if edit.metadata is not None:
        metadata = validate_metadata(merge_patch(document.meta or {}, edit.metadata))
        if metadata != (document.meta or {}):
            changes["meta"] = metadata
    if not changes:
        return []
    for name, value in changes.items():
        setattr(document, name, value)
    document.updated_at = utcnow()
    fields = ["metadata" if name == "meta" else name for name in changes]
    audit("document.updated", actor=actor, resource_type="document", resource_id=document.id, outcome="success",
          correlation_id=correlation_id, session=session, organization_id=document.organization_id,
          source_ip=source_ip, fields=fields, tags=sorted((edit.tags or {}).keys()),
          metadata_keys=sorted((edit.metadata or {}).keys()))
    return fields
