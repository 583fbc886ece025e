"""What the identity operators did to an account, in the OfficeFlow store, with its domain event.

The identity providers hold the accounts; OfficeFlow kept no record of them. To write the ``account.*`` events
in the transaction of a change, the change is recorded here (``identity_accounts``, one row per provider
account, unique on provider and the provider's account id) after the provider call succeeded:

- ``provisioned``: :class:`~operators.identity.ProvisionUserOperator` created or adopted the account
  (``com.officeflow.account.provisioned``);
- ``deprovisioned``: :class:`~operators.identity.DeprovisionUserOperator` suspended it
  (``com.officeflow.account.deprovisioned``);
- ``deleted``: the deprovisioning deleted it after its retention (``com.officeflow.account.deleted``).

A change to the state the row already has (a retried task, a re-run) writes nothing: the event says the state
changed. The provider call comes first: a try that dies between the call and this record leaves the account
changed without an event until the retry, which finds the account and records it (at least once, never an
event for a change that did not happen). Neither the row nor the event holds the login or a name: the
employee id, the provider, the provider's account id and the organization identify the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from include.officeflow.events.outbox import add_event
from include.officeflow.events.values import id_or_digest
from include.officeflow.store import get_engine, session_scope
from include.officeflow.store.models import IdentityAccount, new_id, utcnow

STATES = ("provisioned", "deprovisioned", "deleted")


@dataclass(frozen=True)
class RunRef:
    """The task that changed the account, and its run's ids."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    organization_id: str | None = None
    correlation_id: str | None = None


@lru_cache(maxsize=4)
def _insert_or_nothing(dialect: str) -> Any:
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(IdentityAccount.__table__).on_conflict_do_nothing(index_elements=["provider", "account_id"])


def record(url: str | None, state: str, *, provider: str, account_id: str, employee_id: str | None = None,
           provider_status: str | None = None, run: RunRef = RunRef(), created: bool | None = None) -> bool:
    """Record that the account ``(provider, account_id)`` is now ``state`` and write
    ``com.officeflow.account.<state>`` in the same transaction; False (and no event) when it already was.

    The organization and employee id stay those recorded first unless this change knows them (a deprovisioning
    run often knows only the login); ``created`` (provisioned only): the account is new, not adopted.
    """
    if state not in STATES:
        raise ValueError(f"unknown account state {state!r} (one of {', '.join(STATES)})")
    engine = get_engine(url)
    now = utcnow()
    employee_id = employee_id[:64] if employee_id else None
    with session_scope(url) as session:
        session.execute(_insert_or_nothing(engine.dialect.name).values(
            id=new_id(), organization_id=run.organization_id or "default", provider=provider, account_id=account_id,
            employee_id=employee_id, state="new", created_at=now, updated_at=now))
        row = session.scalars(select(IdentityAccount).where(IdentityAccount.provider == provider,
                                                            IdentityAccount.account_id == account_id)
                              .with_for_update()).one()
        if row.state == state:
            return False
        row.state, row.provider_status, row.updated_at = state, provider_status, now
        row.employee_id = employee_id or row.employee_id
        if run.organization_id:
            row.organization_id = run.organization_id
        row.dag_id, row.run_id, row.task_id = run.dag_id, run.run_id, run.task_id
        data: dict[str, Any] = {"employee_id": id_or_digest(row.employee_id), "provider": provider,
                                "account_id": account_id, "organization_id": row.organization_id, "state": state,
                                "provider_status": provider_status, "dag_id": run.dag_id, "run_id": run.run_id,
                                "task_id": run.task_id}
        if created is not None:
            data["created"] = created
        add_event(session, area="account", action=state, subject=f"{provider}:{account_id}",
                  organization_id=row.organization_id, correlation_id=run.correlation_id, data=data)
        return True


def get(url: str | None, provider: str, account_id: str) -> IdentityAccount | None:
    """The record of ``(provider, account_id)``, or None."""
    with session_scope(url) as session:
        return session.scalars(select(IdentityAccount).where(IdentityAccount.provider == provider,
                                                             IdentityAccount.account_id == account_id)).first()
