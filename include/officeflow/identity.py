"""Identity providers: the common model, the client interface, group mapping and retry policy.

OfficeFlow provisions accounts in Google Workspace, Microsoft Entra (Graph) and Okta. Each provider
has a hook under ``operators/hooks/`` implementing :class:`IdentityClient`; the operators in
``operators/identity.py`` only speak this interface, so every provider gets the same idempotent,
check-then-act behaviour under Airflow retries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

Provider = Literal["google", "microsoft", "okta"]
PROVIDERS: tuple[str, ...] = ("google", "microsoft", "okta")
DEFAULT_CONN_IDS = {"google": "officeflow_google", "microsoft": "officeflow_microsoft", "okta": "officeflow_okta"}
DEFAULT_GROUPS_FILE = Path(__file__).resolve().parents[1] / "identity" / "groups.yaml"

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


# --- errors ---------------------------------------------------------------------------------------

class IdentityError(Exception):
    """A provider call failed. ``retryable`` failures may pass on an Airflow retry."""

    retryable = True


class IdentityAuthError(IdentityError):
    """Bad or insufficient credentials (401/403): a retry will not help; fix the connection."""

    retryable = False


class IdentityInputError(IdentityError):
    """The provider refused the input (400 and the like), or it was invalid before any call."""

    retryable = False


class IdentityConflict(IdentityError):
    """The account (or membership) already exists (409 / Okta E0000001 on login)."""

    retryable = False


class IdentityNotFound(IdentityError):
    retryable = False


class IdentityRateLimited(IdentityError):
    """Still throttled after the in-call retries; Airflow's retry (with backoff) takes over."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- model ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """The hire as the identity providers need it. ``email`` is the work login to create."""

    given_name: str
    family_name: str
    email: str
    department: str | None = None
    job_title: str | None = None
    manager_email: str | None = None
    personal_email: str | None = None
    employee_id: str | None = None
    location: str | None = None

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def local_part(self) -> str:
        return self.email.split("@", 1)[0]

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Person:
        """Validate before any API call; accepts OfficeFlow's hire keys (first_name, …) and these names.

        Raises :class:`IdentityInputError` listing every problem.
        """
        if not isinstance(data, dict):
            raise IdentityInputError(f"person must be a mapping, got {type(data).__name__}")

        def pick(*keys: str) -> str | None:
            for key in keys:
                value = data.get(key)
                if value is not None and str(value).strip():
                    return str(value).strip()
            return None

        person = cls(
            given_name=pick("given_name", "first_name") or "",
            family_name=pick("family_name", "last_name") or "",
            email=(pick("email", "work_email", "login") or "").lower(),
            department=pick("department"),
            job_title=pick("job_title", "role"),
            manager_email=(pick("manager_email", "manager") or None),
            personal_email=pick("personal_email"),
            employee_id=pick("employee_id"),
            location=pick("location"),
        )
        problems = []
        if not person.given_name:
            problems.append("given name (first_name) is required")
        if not person.family_name:
            problems.append("family name (last_name) is required")
        if not person.email:
            problems.append("email is required")
        elif not EMAIL.match(person.email):
            problems.append(f"email {person.email!r} is not a valid address")
        for label, value in (("given name", person.given_name), ("family name", person.family_name)):
            if len(value) > 60:
                problems.append(f"{label} is longer than 60 characters")
            if any(ch in value for ch in "<>\"\\") or any(ord(ch) < 32 for ch in value):
                problems.append(f"{label} contains characters identity providers refuse")
        if person.personal_email and not EMAIL.match(person.personal_email):
            problems.append(f"personal_email {person.personal_email!r} is not a valid address")
        if problems:
            raise IdentityInputError("invalid person: " + "; ".join(problems))
        return person


@dataclass
class Account:
    """An account as a provider reports it. ``status`` is the provider's own word (ACTIVE, SUSPENDED, …)."""

    provider: str
    id: str
    login: str
    enabled: bool
    status: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class IdentityClient(Protocol):
    """What every provider hook implements. Every method is safe to call again after a failure."""

    provider: str

    def find_user(self, login: str) -> Account | None:
        """The account whose login / primary email is ``login`` (case-insensitive), or None."""

    def create_user(self, person: Person, password: str) -> Account:
        """Create an enabled account for ``person.email``; :class:`IdentityConflict` if it exists."""

    def update_user(self, account: Account, person: Person) -> Account:
        """Set name, department, title (and manager where supported) from ``person``."""

    def suspend_user(self, account: Account) -> Account:
        """Disable sign-in. Checks the current status first; suspending a suspended account is a no-op."""

    def revoke_sessions(self, account: Account) -> None:
        """End the account's sign-in sessions (and refresh tokens)."""

    def delete_user(self, account: Account) -> None:
        """Delete the account; an account already gone is not an error."""

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        """Resolve group names (Google: group email; Graph: displayName; Okta: profile.name) to ids.

        Raises :class:`IdentityNotFound` naming every group that does not exist.
        """

    def user_groups(self, account: Account) -> dict[str, str]:
        """The account's current groups: id -> name."""

    def add_member(self, account: Account, group_id: str) -> bool:
        """Add to a group; False when it already was a member."""

    def remove_member(self, account: Account, group_id: str) -> bool:
        """Remove from a group; False when it was not a member."""


# --- group mapping ----------------------------------------------------------------------------------

class ProviderGroups(BaseModel):
    """Groups of one provider: for everyone, per department, per role (job title)."""

    model_config = ConfigDict(extra="forbid")

    all: list[str] = Field(default_factory=list)
    departments: dict[str, list[str]] = Field(default_factory=dict)
    roles: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("all")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _check_names(value)

    @field_validator("departments", "roles")
    @classmethod
    def _mapping(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, names in value.items():
            if not str(key).strip():
                raise ValueError("department/role names must not be empty")
            _check_names(names)
        return value

    def for_person(self, department: str | None, role: str | None) -> list[str]:
        names = list(self.all)
        names += _lookup(self.departments, department)
        names += _lookup(self.roles, role)
        return list(dict.fromkeys(names))  # ordered, unique

    def managed(self) -> set[str]:
        """Every group this mapping can grant: the ones a role change may take away."""
        names = set(self.all)
        for group_list in (*self.departments.values(), *self.roles.values()):
            names.update(group_list)
        return names


class GroupMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    google: ProviderGroups = Field(default_factory=ProviderGroups)
    microsoft: ProviderGroups = Field(default_factory=ProviderGroups)
    okta: ProviderGroups = Field(default_factory=ProviderGroups)

    def of(self, provider: str) -> ProviderGroups:
        if provider not in PROVIDERS:
            raise IdentityInputError(f"unknown identity provider {provider!r} (one of {', '.join(PROVIDERS)})")
        groups: ProviderGroups = getattr(self, provider)
        return groups


def _check_names(names: list[str]) -> list[str]:
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("group names must be non-empty strings")
    return names


def _lookup(table: dict[str, list[str]], key: str | None) -> list[str]:
    if not key:
        return []
    folded = key.strip().casefold()
    for name, groups in table.items():
        if name.strip().casefold() == folded:
            return groups
    return []


class GroupMappingError(ValueError):
    pass


@lru_cache(maxsize=8)
def _load_group_mapping(path: str, mtime: float) -> GroupMapping:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GroupMappingError(f"cannot read group mapping {path}: {exc}") from exc
    try:
        return GroupMapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise GroupMappingError(f"invalid group mapping {path}: {problems}") from None


def load_group_mapping(path: str | Path | None = None) -> GroupMapping:
    """The department/role → groups mapping (``OFFICEFLOW_IDENTITY_GROUPS_FILE``), validated."""
    if path is None:
        from include.officeflow.settings import get_settings

        path = get_settings().identity_groups_file or DEFAULT_GROUPS_FILE
    resolved = Path(path)
    try:
        mtime = resolved.stat().st_mtime
    except OSError as exc:
        raise GroupMappingError(f"cannot read group mapping {resolved}: {exc}") from exc
    return _load_group_mapping(str(resolved), mtime)


# --- retries inside one call ------------------------------------------------------------------------

T = TypeVar("T")


def with_retries(call: Callable[[], T], *, describe: str, max_attempts: int = 5, max_wait: float = 60.0,
                 sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run ``call``; on :class:`IdentityRateLimited` wait its ``retry_after`` (capped), on other
    retryable :class:`IdentityError` back off 1, 2, 4 … s, up to ``max_attempts`` tries.

    A wait longer than ``max_wait`` is not spent inside the task: the error goes to Airflow, whose
    retry (with its own backoff) comes later. Non-retryable errors raise at once.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return call()
        except IdentityRateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else min(2.0 ** (attempt - 1), max_wait)
            if attempt == max_attempts or wait > max_wait:
                raise
            log.warning("%s: rate limited, waiting %.1f s (attempt %d/%d)", describe, wait, attempt, max_attempts)
            sleep(wait)
        except IdentityError as exc:
            if not exc.retryable or attempt == max_attempts:
                raise
            wait = min(2.0 ** (attempt - 1), max_wait)
            log.warning("%s failed (%s); retrying in %.1f s (attempt %d/%d)", describe, exc, wait, attempt,
                        max_attempts)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(value: str | None, *, reset_epoch: str | None = None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or Okta's ``X-Rate-Limit-Reset`` (epoch)."""
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
            except (TypeError, ValueError):
                pass
    if reset_epoch:
        try:
            return max(0.0, float(reset_epoch) - (now or time.time()))
        except ValueError:
            return None
    return None
