"""Per-organization branding (``brands.yaml``): the name, colours, logo, sign-off, footer and sender
that emails (and the HR workflows' messages) use for an organization.

The file is ``OFFICEFLOW_EMAIL_BRANDS_FILE`` or ``include/templates/email/brands.yaml``: a mapping
organization id -> ``{name, color, logo_url, sign_off, footer, from_email}``. It is re-read when it
changes (keyed on its modification time).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_ORGANIZATION = "default"
#: Every key a brand has, with OfficeFlow's own values; ``brands.yaml`` overrides them.
BASE_BRAND: dict[str, Any] = {"name": "OfficeFlow", "color": "#2563eb", "logo_url": "",
                              "sign_off": "People Operations", "footer": "Sent by People Operations via OfficeFlow.",
                              "from_email": ""}


def _brands_file() -> Path:
    from include.officeflow.settings import get_settings
    from include.officeflow.templating import TEMPLATES_DIR

    return get_settings().email_brands_file or TEMPLATES_DIR / "email" / "brands.yaml"


@lru_cache(maxsize=8)
def _load_brands(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) and v.get("name") for v in data.values()):
        raise ValueError(f"{path}: expected a mapping organization -> {{name, color, ...}}")
    return data


def brand_for(organization: str | None) -> dict[str, Any]:
    """The branding of ``organization`` (``default`` for unknown ones), with every key present."""
    path = _brands_file()
    brands = _load_brands(str(path), path.stat().st_mtime) if path.exists() else {}
    chosen = brands.get(organization or DEFAULT_ORGANIZATION) or brands.get(DEFAULT_ORGANIZATION) or {}
    return {**BASE_BRAND, **brands.get(DEFAULT_ORGANIZATION, {}), **chosen}
