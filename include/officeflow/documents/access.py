"""Readers and access: who may read a document's metadata and share it, and who may change its readers.

The owner, admins, and listed readers (``user:``, ``group:`` or ``role:`` principals) may read a
document and create share links; only the owner and admins change its readers. Nobody reads or manages a
document of an organization outside the principal's ``organizations`` (tenant isolation; None = all), not
even its owner, an admin or a reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.officeflow.documents.errors import DocumentError
from include.officeflow.store import Document, DocumentReader

PRINCIPAL_TYPES = ("user", "group", "role")


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
class Principal:
    """Who is asking: a user name, their roles and groups, whether the auth manager makes them admin, and the
    organizations they are a member of (None: every organization)."""

    name: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    is_admin: bool = False
    organizations: frozenset[str] | None = None

    def sees(self, document: Document) -> bool:
        return self.organizations is None or document.organization_id in self.organizations


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


def readers_of(session: Session, document_id: str) -> list[Reader]:
    rows = session.scalars(select(DocumentReader).where(DocumentReader.document_id == document_id)
                           .order_by(DocumentReader.principal_type, DocumentReader.principal))
    return [Reader(r.principal_type, r.principal) for r in rows]


def can_read(document: Document, readers: Iterable[Reader], who: Principal) -> bool:
    if not who.sees(document):
        return False
    if who.is_admin or document.owner == who.name:
        return True
    for reader in readers:
        if ((reader.principal_type == "user" and reader.principal == who.name)
                or (reader.principal_type == "role" and reader.principal.lower() in {r.lower() for r in who.roles})
                or (reader.principal_type == "group" and reader.principal in who.groups)):
            return True
    return False


def can_manage(document: Document, who: Principal) -> bool:
    """Changing readers is for the owner and admins only (of the principal's organizations)."""
    return who.sees(document) and (who.is_admin or document.owner == who.name)
