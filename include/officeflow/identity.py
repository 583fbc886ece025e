"""Identity providers: the common model, the client interface and group mapping.

OfficeFlow provisions accounts in Google Workspace, Microsoft Entra (Graph) and Okta. Each provider
has a hook under ``operators/hooks/`` implementing :class:`IdentityClient`; the operators in
``operators/identity.py`` only speak this interface, so every provider gets the same idempotent,
check-then-act behaviour under Airflow retries. The hooks' failures are the errors of
:mod:`include.officeflow.errors`, retried by its ``with_retries``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from include.officeflow.addresses import is_email_address
from include.officeflow.errors import InvalidInput

Provider = Literal["google", "microsoft", "okta"]
PROVIDERS: tuple[str, ...] = ("google", "microsoft", "okta")
DEFAULT_CONN_IDS = {"google": "officeflow_google", "microsoft": "officeflow_microsoft", "okta": "officeflow_okta"}
DEFAULT_GROUPS_FILE = Path(__file__).resolve().parents[1] / "identity" / "groups.yaml"


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

        Raises :class:`InvalidInput` listing every problem.
        """
        if not isinstance(data, dict):
            raise InvalidInput(f"person must be a mapping, got {type(data).__name__}")

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
        elif not is_email_address(person.email):
            problems.append(f"email {person.email!r} is not a valid address")
        for label, value in (("given name", person.given_name), ("family name", person.family_name)):
            if len(value) > 60:
                problems.append(f"{label} is longer than 60 characters")
            if any(ch in value for ch in "<>\"\\") or any(ord(ch) < 32 for ch in value):
                problems.append(f"{label} contains characters identity providers refuse")
        if person.personal_email and not is_email_address(person.personal_email):
            problems.append(f"personal_email {person.personal_email!r} is not a valid address")
        if problems:
            raise InvalidInput("invalid person: " + "; ".join(problems))
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
        """Create an enabled account for ``person.email``; :class:`Conflict` if it exists."""

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

        Raises :class:`NotFound` naming every group that does not exist.
        """

    def user_groups(self, account: Account) -> dict[str, str]:
        """The account's current groups: id -> name."""

    def add_member(self, account: Account, group_id: str) -> bool:
        """Add to a group; False when it already was a member."""

    def remove_member(self, account: Account, group_id: str) -> bool:
        """Remove from a group; False when it was not a member."""

    def close(self) -> None:
        """Release the client's connections (HTTP sessions, event loop); a later call opens them again."""


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
            raise InvalidInput(f"unknown identity provider {provider!r} (one of {', '.join(PROVIDERS)})")
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
