"""Webhook endpoints: the stored definitions, their secrets, and the built-in BambooHR endpoint."""

from __future__ import annotations

import enum
import re
import secrets as _random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.officeflow.mapping import hr_routes
from include.officeflow.settings import Settings, get_settings
from include.officeflow.store import WebhookEndpoint, session_scope
from plugins.officeflow_gateway import secret_box
from plugins.officeflow_gateway.adapters import get_adapter

BUILTIN_BAMBOOHR = "bamboohr"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class EndpointConfig:
    """What the delivery pipeline needs of an endpoint, secrets decrypted."""

    id: str
    organization_id: str
    adapter: str
    target_dag_id: str
    event_types: tuple[str, ...]
    routes: dict[str, str]
    mapping: dict[str, str]
    verification: dict[str, Any]
    rate_limit_per_minute: int
    enabled: bool
    secrets: tuple[str, ...] = field(repr=False)

    def target_for(self, event_type: str) -> str | None:
        """The workflow an event type starts: its route, else the default target if the type passes the
        ``event_types`` filter (empty = every type), else None (stored and answered as ignored)."""
        if event_type in self.routes:
            return self.routes[event_type]
        if not self.event_types or event_type in self.event_types:
            return self.target_dag_id
        return None


def new_endpoint_id() -> str:
    return "ep_" + _random.token_urlsafe(12).replace("-", "").replace("_", "")[:16]


#: Adapters whose senders make the secret and show it to the receiver: BambooHR's private key, a Standard
#: Webhooks sender's ``whsec_`` secret (Svix and others). Workday's password is the one you set in Workday: generated.
SENDER_MADE_SECRETS = ("bamboohr", "generic")
MIN_BAMBOOHR_KEY_LENGTH = 16


def check_supplied_secret(adapter: str, secret: str) -> None:
    """Raise ``ValueError`` unless ``secret`` is a secret ``adapter``'s senders make, in their format."""
    if adapter not in SENDER_MADE_SECRETS:
        raise ValueError(f"{adapter} endpoints get a generated secret; a secret may be supplied for "
                         f"{' and '.join(SENDER_MADE_SECRETS)} endpoints, whose senders make it")
    if adapter == "generic":
        from plugins.officeflow_gateway.adapters.generic import check_secret

        check_secret(secret)
    elif len(secret.strip()) < MIN_BAMBOOHR_KEY_LENGTH or secret != secret.strip():
        raise ValueError(f"a BambooHR private key has at least {MIN_BAMBOOHR_KEY_LENGTH} characters and no "
                         "surrounding blanks")


def new_secret_for(adapter: str) -> str:
    if adapter == "generic":
        from plugins.officeflow_gateway.adapters.generic import generate_secret

        return generate_secret()
    return secret_box.new_secret()


def _valid_secrets(row: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    valid = [secret_box.decrypt(row.secret_encrypted)]
    expires = row.previous_secret_expires_at
    if row.previous_secret_encrypted and expires is not None:
        if expires.tzinfo is None:  # SQLite returns naive datetimes
            expires = expires.replace(tzinfo=UTC)
        if expires > now:
            valid.append(secret_box.decrypt(row.previous_secret_encrypted))
    return tuple(valid)


def to_config(row: WebhookEndpoint) -> EndpointConfig:
    return EndpointConfig(
        id=row.id, organization_id=row.organization_id, adapter=row.adapter, target_dag_id=row.target_dag_id,
        event_types=tuple(row.event_types or ()), routes=dict(row.routes or {}),
        mapping=dict(row.mapping or get_adapter(row.adapter).default_mapping),
        verification=dict(row.verification or {}), rate_limit_per_minute=row.rate_limit_per_minute,
        enabled=row.enabled, secrets=_valid_secrets(row, datetime.now(UTC)),
    )


_builtin: tuple[object, EndpointConfig | None] = (None, None)


def _builtin_bamboohr() -> EndpointConfig | None:
    """The endpoint configured by OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY (dev mode and simple installs), built once per
    loaded settings (every delivery to it asks).

    One BambooHR webhook serves a whole company, so its lifecycle events are routed to their workflows:
    hires to onboarding, terminations and deletions to offboarding, job changes to the role change.
    Other types (``employee.updated``) are stored as ignored.
    """
    global _builtin
    settings = get_settings()
    built_for, config = _builtin
    if built_for is not settings:
        config = _build_builtin_bamboohr(settings)
        _builtin = (settings, config)
    return config


def _build_builtin_bamboohr(settings: Settings) -> EndpointConfig | None:
    if settings.bamboohr_webhook_key is None:
        return None
    from plugins.officeflow_gateway.adapters.bamboohr import BambooHRAdapter

    routes = hr_routes()
    return EndpointConfig(
        id=BUILTIN_BAMBOOHR, organization_id="default", adapter="bamboohr",
        target_dag_id=settings.onboarding_dag_id, event_types=("employee.created",), routes=routes,
        mapping=dict(BambooHRAdapter.default_mapping), verification={},
        rate_limit_per_minute=settings.webhook_default_rate_limit_per_minute, enabled=True,
        secrets=(settings.bamboohr_webhook_key.get_secret_value(),),
    )


class Miss(enum.Enum):
    MISS = "miss"


MISS = Miss.MISS


class EndpointCache:
    """Endpoint configs cached for a couple of seconds: deliveries should not decrypt per request.

    Changes made through the API in this process invalidate at once; other replicas see them
    within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, EndpointConfig | None]] = {}
        self._lock = threading.Lock()

    def peek(self, endpoint_id: str) -> EndpointConfig | Miss | None:
        """The cached config without touching the database (``MISS`` when a lookup is needed).

        Deliveries call this on the event loop and only go to a worker thread on a miss.
        """
        if endpoint_id == BUILTIN_BAMBOOHR:
            return _builtin_bamboohr()
        if not _ID.match(endpoint_id):
            return None
        with self._lock:
            hit = self._items.get(endpoint_id)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return MISS

    def get(self, endpoint_id: str) -> EndpointConfig | None:
        if endpoint_id == BUILTIN_BAMBOOHR:
            return _builtin_bamboohr()
        if not _ID.match(endpoint_id):
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(endpoint_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        with session_scope() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            config = to_config(row) if row is not None else None
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[endpoint_id] = (now, config)
        return config

    def invalidate(self, endpoint_id: str) -> None:
        with self._lock:
            self._items.pop(endpoint_id, None)


cache = EndpointCache()


def rotate(row: WebhookEndpoint, overlap_seconds: int, secret: str | None = None) -> str:
    """Give ``row`` a new secret (``secret``, checked by :func:`check_supplied_secret` first, or a generated one);
    the old one keeps verifying for ``overlap_seconds``."""
    fresh = secret or new_secret_for(row.adapter)
    row.previous_secret_encrypted = row.secret_encrypted if overlap_seconds > 0 else None
    row.previous_secret_expires_at = (
        datetime.now(UTC) + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    )
    row.secret_encrypted = secret_box.encrypt(fresh)
    return fresh
