"""Organization membership: which organizations a user sees and acts in (tenant isolation).

A user with the ``OfficeFlow All Organizations`` permission (platform administrators) is not limited;
everyone else sees only the organizations listed here for their user name — none until added.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from include.officeflow.store import UserOrganization, session_scope


def of_user(username: str) -> set[str]:
    with session_scope() as session:
        return set(session.scalars(select(UserOrganization.organization_id)
                                   .where(UserOrganization.username == username)))


def all_memberships() -> dict[str, list[str]]:
    with session_scope() as session:
        rows = session.execute(select(UserOrganization.username, UserOrganization.organization_id)
                               .order_by(UserOrganization.username, UserOrganization.organization_id)).all()
    members: dict[str, list[str]] = {}
    for username, organization in rows:
        members.setdefault(username, []).append(organization)
    return members


def set_user(username: str, organizations: Iterable[str], *, by: str) -> tuple[set[str], set[str]]:
    """Make ``organizations`` the user's memberships; return (added, removed)."""
    wanted = set(organizations)
    with session_scope() as session:
        current = set(session.scalars(select(UserOrganization.organization_id)
                                      .where(UserOrganization.username == username)))
        removed, added = current - wanted, wanted - current
        if removed:
            session.execute(delete(UserOrganization).where(UserOrganization.username == username,
                                                           UserOrganization.organization_id.in_(removed)))
        session.add_all(UserOrganization(username=username, organization_id=org, added_by=by) for org in added)
    return added, removed
