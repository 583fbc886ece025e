"""Identity operators: provision, update and deprovision accounts in Google Workspace, Microsoft
Entra (Graph) and Okta, safely under Airflow retries.

One operator family for the three providers (``provider="google" | "microsoft" | "okta"``); each
provider is a hook under ``operators/hooks/`` implementing
:class:`include.officeflow.identity.IdentityClient`. Every operator looks the account up by its login
first (check-then-act), so a retry at any point adopts what an earlier try created instead of
creating it twice. Groups follow ``include/identity/groups.yaml`` (department/role → groups).

What provisioning and deprovisioning did is recorded in the OfficeFlow store after the provider's calls
succeeded, with its domain event in the same transaction (``com.officeflow.account.provisioned``,
``.deprovisioned``, ``.deleted``; :mod:`include.officeflow.identity_accounts`): the employee id, the provider, the
provider's account id and the run's organization and correlation id, never the login or a name.
"""

from __future__ import annotations

import importlib
import re
import secrets
import string
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from include.officeflow.errors import Conflict, InvalidInput, ServiceError
from include.officeflow.events.values import run_ids, run_value
from include.officeflow.identity import (
    DEFAULT_CONN_IDS,
    PROVIDERS,
    Account,
    IdentityClient,
    Person,
    load_group_mapping,
)
from operators.base import for_airflow
from operators.provider_base import ProviderOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

HOOKS = {
    "google": "operators.hooks.google_directory.GoogleDirectoryHook",
    "microsoft": "operators.hooks.msgraph_identity.MicrosoftGraphIdentityHook",
    "okta": "operators.hooks.okta.OktaHook",
}
DELIVER_TO_VARIABLE = "variable"
PASSWORD_DELIVERIES = (DELIVER_TO_VARIABLE, "none")


def identity_client(provider: str, conn_id: str | None = None) -> IdentityClient:
    """The provider's hook, built from its Airflow connection (``officeflow_<provider>`` by default)."""
    if provider not in PROVIDERS:
        raise InvalidInput(f"unknown identity provider {provider!r} (one of {', '.join(PROVIDERS)})")
    module_name, _, class_name = HOOKS[provider].rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    client: IdentityClient = hook_class(conn_id or DEFAULT_CONN_IDS[provider])
    return client


def temporary_password(login: str = "", length: int = 20) -> str:
    """A password every provider's default policy accepts: upper, lower, digit and symbol, and no part
    (3 characters or more) of ``login`` (Okta refuses those)."""
    alphabet = string.ascii_letters + string.digits + "!#%+-=?@^_"
    parts = [part for part in re.split(r"[@.\-_+]", login.casefold()) if len(part) >= 3]
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in candidate) and any(c.isupper() for c in candidate)
                and any(c.isdigit() for c in candidate) and any(not c.isalnum() for c in candidate)
                and not any(part in candidate.casefold() for part in parts)):
            return candidate


def password_variable_key(provider: str, login: str) -> str:
    """Airflow Variable holding a new account's temporary password. Airflow masks Variables whose
    key contains ``password`` in logs and the UI; the key, never the value, goes to XCom."""
    safe = "".join(c if c.isalnum() else "_" for c in login.lower())
    return f"officeflow_temp_password__{provider}__{safe}"


class _IdentityOperator(ProviderOperator):
    """Shared parts: provider/connection choice, the hook, input validation, group sync."""

    providers = PROVIDERS
    ui_color = "#e3f2fd"

    def __init__(self, *, provider: str, conn_id: str | None = None, groups_file: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(provider=provider, conn_id=conn_id, **kwargs)
        self.groups_file = groups_file

    @cached_property
    def hook(self) -> IdentityClient:
        """The provider's hook on the task's connection (``officeflow_<provider>`` by default)."""
        try:
            return identity_client(self.provider, self.conn_id)
        except ServiceError as exc:
            raise for_airflow(exc, f"{self.provider}: {exc}") from exc

    def _person(self, data: Any) -> Person:
        try:
            return Person.from_mapping(data)
        except InvalidInput as exc:
            raise AirflowFailException(str(exc)) from exc

    def _sync_groups(self, account: Account, wanted: list[str], managed: set[str]) -> dict[str, list[str]]:
        """Add ``wanted`` groups; remove groups in ``managed`` (the mapping's) that are not wanted.
        Groups the mapping does not know are left alone (someone added them by hand)."""
        hook = self.hook
        resolve = sorted(set(wanted) | managed)
        ids = self.service_call("resolve groups", lambda: hook.group_ids(resolve)) if resolve else {}
        current = self.service_call("list groups", lambda: hook.user_groups(account))
        added, removed = [], []
        for name in wanted:
            if ids[name] in current:
                continue
            if self.service_call(f"add to {name}", partial(hook.add_member, account, ids[name])):
                added.append(name)
        for name in sorted(managed - set(wanted)):
            if ids[name] in current and self.service_call(f"remove from {name}",
                                                          partial(hook.remove_member, account, ids[name])):
                removed.append(name)
        return {"added": added, "removed": removed, "groups": sorted(wanted)}

    def _find(self, login: str) -> Account | None:
        return self.service_call(f"look up {login}", lambda: self.hook.find_user(login))

    def _record(self, context: Any, state: str, account_id: str, *, provider_status: str | None,
                employee_id: str | None = None, created: bool | None = None) -> bool:
        """Record the account's new ``state`` in the store with its ``account.<state>`` event (none when the
        record already had it: a retry); the employee id is ``employee_id`` or the run's."""
        from include.officeflow import identity_accounts
        from include.officeflow.store import task_store_url

        ti = (context or {}).get("ti")
        organization_id, correlation_id = run_ids(context)
        run = identity_accounts.RunRef(dag_id=getattr(ti, "dag_id", None), run_id=getattr(ti, "run_id", None),
                                       task_id=getattr(ti, "task_id", None), organization_id=organization_id,
                                       correlation_id=correlation_id)
        return identity_accounts.record(task_store_url(), state, provider=self.provider, account_id=account_id,
                                        employee_id=employee_id or run_value(context, "employee_id"),
                                        provider_status=provider_status, run=run, created=created)


class ProvisionUserOperator(_IdentityOperator):
    """Create (or adopt) the account of a new hire, set a temporary password, add the mapped groups.

    :param person: the hire (templated; a dict or an XCom of one) with first_name/given_name,
        last_name/family_name, email (the work login), department, job_title/role, …
    :param provider: ``google``, ``microsoft`` or ``okta``.
    :param conn_id: Airflow connection (default ``officeflow_<provider>``).
    :param password_delivery: ``variable`` (default): the temporary password goes to an Airflow
        Variable named ``officeflow_temp_password__<provider>__<login>`` (masked by Airflow; read it,
        hand it over, delete it); ``none``: it is only masked and set (the admin resets it later).
    :return: ``{provider, account_id, login, created, groups, added, removed, password_variable}``;
        never the password itself.
    """

    template_fields: Sequence[str] = ("person", "provider")

    def __init__(self, *, person: dict[str, Any] | str, password_delivery: str = DELIVER_TO_VARIABLE,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if password_delivery not in PASSWORD_DELIVERIES:
            raise ValueError(f"password_delivery must be one of {PASSWORD_DELIVERIES}")
        self.person = person
        self.password_delivery = password_delivery

    def execute(self, context: Context) -> dict[str, Any]:
        person = self._person(self.person)
        mapping = load_group_mapping(self.groups_file).of(self.provider)
        with closing(self.hook):
            account, password = self._create_or_adopt(person)
            password_key = None
            if password is not None and self.password_delivery == DELIVER_TO_VARIABLE:
                password_key = self._deliver_password(person, password)
            groups = self._sync_groups(account, mapping.for_person(person.department, person.job_title),
                                       managed=set())
        self._record(context, "provisioned", account.id, provider_status=account.status,
                     employee_id=person.employee_id, created=password is not None)
        return {"provider": self.provider, "account_id": account.id, "login": account.login,
                "created": password is not None, "password_variable": password_key, **groups}

    def _create_or_adopt(self, person: Person) -> tuple[Account, str | None]:
        """The person's account, and the temporary password when this call created it."""
        from airflow.sdk.log import mask_secret

        account = self._find(person.email)
        if account is not None and not account.enabled:
            raise AirflowFailException(
                f"{self.provider}: {person.email} exists but is {account.status}; a provisioning run does not "
                "re-enable accounts (re-hire: reactivate it deliberately, then re-run)"
            )
        if account is not None:
            self.log.info("Adopted existing %s account %s for %s", self.provider, account.id, person.email)
            existing = account
            return self.service_call(f"update {person.email}", lambda: self.hook.update_user(existing, person)), None
        password = temporary_password(person.email)
        mask_secret(password)
        try:
            account = self.service_call(f"create {person.email}", lambda: self.hook.create_user(person, password))
        except AirflowFailException as exc:
            if not isinstance(exc.__cause__, Conflict):
                raise
            # Created by a concurrent or earlier try whose answer was lost: adopt it.
            account = self._find(person.email)
            if account is None:
                raise
            self.log.info("Adopted %s account %s for %s, created by an earlier try", self.provider, account.id,
                          person.email)
            return account, None
        self.log.info("Created %s account %s for %s", self.provider, account.id, person.email)
        return account, password

    def _deliver_password(self, person: Person, password: str) -> str:
        from airflow.sdk import Variable

        key = password_variable_key(self.provider, person.email)
        Variable.set(key, password, description=f"Temporary {self.provider} password of {person.email}; "
                     "delete after handing it over")
        return key


class UpdateUserOperator(_IdentityOperator):
    """Role or department change: update the profile and move the mapped groups.

    Groups the mapping grants for the new department/role are added; mapped groups the person no
    longer qualifies for are removed; groups outside the mapping are left alone.
    """

    template_fields: Sequence[str] = ("person", "provider")

    def __init__(self, *, person: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.person = person

    def execute(self, context: Context) -> dict[str, Any]:
        person = self._person(self.person)
        mapping = load_group_mapping(self.groups_file).of(self.provider)
        with closing(self.hook):
            account = self._find(person.email)
            if account is None:
                raise AirflowFailException(f"{self.provider}: no account for {person.email}")
            existing = account
            account = self.service_call(f"update {person.email}", lambda: self.hook.update_user(existing, person))
            groups = self._sync_groups(account, mapping.for_person(person.department, person.job_title),
                                       managed=mapping.managed())
        return {"provider": self.provider, "account_id": account.id, "login": account.login, **groups}


def retention_period(value: timedelta | int | float | str | None) -> timedelta | None:
    """``delete_after`` as a period: a timedelta, or a number of days (also as text); None/"" = never delete."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise AirflowFailException(f"delete_after must be a period or a number of days, got {value!r}") from None
    if days < 0 or days > 3650:
        raise AirflowFailException(f"delete_after must be between 0 and 3650 days, got {value!r}")
    return timedelta(days=days)


class DeprovisionUserOperator(_IdentityOperator):
    """Offboarding: suspend sign-in, revoke sessions, remove group memberships, optionally delete
    after a retention period.

    :param login: the work email / login (templated).
    :param delete_after: keep the suspended account this long, then delete it. The task defers
        (no worker slot held) and deletes when the time comes; ``timedelta(0)`` deletes at once;
        None (default) never deletes. A number or a template (e.g. ``"{{ params.retention_days }}"``)
        counts days. (templated)
    """

    template_fields: Sequence[str] = ("login", "provider", "delete_after")

    def __init__(self, *, login: str, remove_groups: bool = True, delete_after: timedelta | int | str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.login = login
        self.remove_groups = remove_groups
        self.delete_after = delete_after

    def execute(self, context: Context) -> dict[str, Any]:
        login = str(self.login or "").strip().lower()
        if not login:
            raise AirflowFailException("login is required")
        with closing(self.hook):
            account = self._find(login)
            if account is None:
                self.log.info("%s: no account for %s; nothing to deprovision", self.provider, login)
                return {"provider": self.provider, "login": login, "account_id": None, "status": "absent"}
            result = {"provider": self.provider, "login": login, **self._suspend(account, login),
                      "deleted": False}
            self._record(context, "deprovisioned", account.id, provider_status=result["status"])
            retention = retention_period(self.delete_after)
            if retention is None:
                return result
            if retention <= timedelta(0):
                return self._delete(context, result)
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = datetime.now(UTC) + retention
        self.log.info("%s: deleting %s at %s (retention %s)", self.provider, login, moment.isoformat(), retention)
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_delete",
                   kwargs={"result": result})
        raise AssertionError("unreachable")  # pragma: no cover - defer() raises TaskDeferred

    def execute_delete(self, context: Context, event: Any = None,
                       result: dict[str, Any] | None = None) -> dict[str, Any]:
        """After the retention period: delete, unless the account was re-enabled meanwhile."""
        with closing(self.hook):
            return self._delete(context, dict(result or {}))

    def _suspend(self, account: Account, login: str) -> dict[str, Any]:
        """Suspend (unless it is already), revoke sessions, remove groups: ``{account_id, status, removed}``."""
        hook = self.hook
        if account.enabled:
            enabled = account
            account = self.service_call(f"suspend {login}", lambda: hook.suspend_user(enabled))
        else:
            self.log.info("%s: %s is already %s", self.provider, login, account.status)
        suspended = account
        self.service_call(f"revoke sessions of {login}", lambda: hook.revoke_sessions(suspended))
        removed: list[str] = []
        if self.remove_groups:
            current = self.service_call("list groups", lambda: hook.user_groups(suspended))
            for group_id, name in sorted(current.items(), key=lambda item: item[1]):
                if self.service_call(f"remove from {name}", partial(hook.remove_member, suspended, group_id)):
                    removed.append(name)
        return {"account_id": account.id, "status": account.status, "removed": removed}

    def _delete(self, context: Any, result: dict[str, Any]) -> dict[str, Any]:
        """Delete the suspended account (gone already: fine) and record it (``account.deleted``)."""
        login = result.get("login") or str(self.login).strip().lower()
        account = self._find(login)
        if account is None:
            self.log.info("%s: %s is already gone", self.provider, login)
        elif account.enabled:
            raise AirflowFailException(f"{self.provider}: {login} was re-enabled during the retention period; "
                                       "not deleting it")
        else:
            gone = account
            self.service_call(f"delete {login}", lambda: self.hook.delete_user(gone))
            self.log.info("%s: deleted %s", self.provider, login)
        account_id = account.id if account is not None else result.get("account_id")
        if account_id:  # gone already: the earlier try that deleted it may have died before recording it
            self._record(context, "deleted", str(account_id), provider_status=None)
        return {**result, "deleted": True}


# --- team membership (dags/team_membership.py) ----------------------------------------------------------

MEMBERSHIP_ACTIONS = ("add", "remove")


class GroupMembershipOperator(_IdentityOperator):
    """Add an existing account to named groups, or remove it from them: a team's groups (the teams API).

    Unlike the provisioning operators it does not use the department/role mapping: the groups are given.
    Checks the current memberships first, so a retry adds or removes nothing twice.

    :param login: the work email / login of an existing account (templated).
    :param groups: group names as the provider resolves them (Google: group email; Microsoft: displayName;
        Okta: profile.name) (templated). Empty: nothing to do, no call is made.
    :param action: ``add`` or ``remove`` (templated).
    :return: ``{provider, login, account_id, action, added, removed, groups}``. Adding to an account that does not
        exist fails the task for good (provision it first); removing from one is a no-op (``account_id`` None).

    .. code-block:: python

        GroupMembershipOperator(task_id="groups", provider="okta", login="ada@example.com",
                                groups=["Engineering"], action="add")
    """

    template_fields: Sequence[str] = ("login", "groups", "action", "provider")

    def __init__(self, *, login: str, groups: Sequence[str] | str = (), action: str = "add", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.login = login
        self.groups = groups
        self.action = action

    def execute(self, context: Context) -> dict[str, Any]:
        login = str(self.login or "").strip().lower()
        groups = list(dict.fromkeys(str(g).strip() for g in (self.groups or ()) if str(g).strip()))
        if not login:
            raise AirflowFailException("login is required")
        if self.action not in MEMBERSHIP_ACTIONS:
            raise AirflowFailException(f"action must be one of {', '.join(MEMBERSHIP_ACTIONS)}, got {self.action!r}")
        result: dict[str, Any] = {"provider": self.provider, "login": login, "account_id": None,
                                  "action": self.action, "added": [], "removed": [], "groups": groups}
        if not groups:
            return result
        with closing(self.hook):
            account = self._find(login)
            if account is None:
                if self.action == "remove":
                    self.log.info("%s: no account for %s; nothing to remove", self.provider, login)
                    return result
                raise AirflowFailException(f"{self.provider}: no account for {login}; provision it first "
                                           "(identity_provisioning or employee_onboarding)")
            return {**result, "account_id": account.id, **self._change(account, groups)}

    def _change(self, account: Account, groups: list[str]) -> dict[str, list[str]]:
        hook = self.hook
        ids = self.service_call("resolve groups", lambda: hook.group_ids(groups))
        current = self.service_call("list groups", lambda: hook.user_groups(account))
        added, removed = [], []
        for name in groups:
            member = ids[name] in current
            if self.action == "add" and not member and \
                    self.service_call(f"add to {name}", partial(hook.add_member, account, ids[name])):
                added.append(name)
            if self.action == "remove" and member and \
                    self.service_call(f"remove from {name}", partial(hook.remove_member, account, ids[name])):
                removed.append(name)
        return {"added": added, "removed": removed}
