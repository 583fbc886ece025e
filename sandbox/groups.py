"""The groups the identity emulations seed: every group named in the identity group mapping.

The mapping is OfficeFlow's ``include/identity/groups.yaml``, read here as data (the sandbox imports no
OfficeFlow code). Its format, per provider (``google``, ``microsoft``, ``okta``)::

    google:
      all: [everyone@officeflow.test]            # groups for everyone
      departments: {Engineering: [engineering@officeflow.test], ...}
      roles: {Software Engineer: [developers@officeflow.test], ...}

Group names are what the provider calls a group: Google the group's email, Microsoft its displayName,
Okta its profile.name. A provider that is missing has no groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: The repository's mapping (the sandbox runs from a checkout: dev mode and the tests).
DEFAULT_GROUPS_FILE = Path(__file__).resolve().parents[1] / "include" / "identity" / "groups.yaml"
PROVIDERS = ("google", "microsoft", "okta")


class GroupFileError(ValueError):
    """The mapping file cannot be read or is not in the format above."""


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) and name.strip() for name in value):
        raise GroupFileError(f"{where}: expected a list of non-empty group names")
    return value


def managed_groups(provider: str, path: str | Path | None = None) -> set[str]:
    """Every group name the mapping at ``path`` (default: :data:`DEFAULT_GROUPS_FILE`) gives ``provider``:
    its ``all`` groups and those of every department and role."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown identity provider {provider!r} (one of {', '.join(PROVIDERS)})")
    source = Path(path) if path is not None else DEFAULT_GROUPS_FILE
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GroupFileError(f"cannot read group mapping {source}: {exc}") from exc
    if not isinstance(data, dict):
        raise GroupFileError(f"{source}: expected a mapping of provider -> groups")
    section = data.get(provider) or {}
    if not isinstance(section, dict):
        raise GroupFileError(f"{source}: {provider}: expected a mapping with all / departments / roles")
    names = set(_names(section.get("all", []), f"{source}: {provider}.all"))
    for kind in ("departments", "roles"):
        table = section.get(kind) or {}
        if not isinstance(table, dict):
            raise GroupFileError(f"{source}: {provider}.{kind}: expected a mapping of name -> groups")
        for key, value in table.items():
            names.update(_names(value, f"{source}: {provider}.{kind}.{key}"))
    return names
