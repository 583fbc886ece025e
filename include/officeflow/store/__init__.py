"""The OfficeFlow store: its own database (not Airflow's), SQLAlchemy 2 models, Alembic migrations."""

from include.officeflow.store.db import get_engine, migrate, session_scope
from include.officeflow.store.models import AuditLog, Base, EventStatus, WebhookEndpoint, WebhookEvent

__all__ = [
    "AuditLog",
    "Base",
    "EventStatus",
    "WebhookEndpoint",
    "WebhookEvent",
    "get_engine",
    "migrate",
    "session_scope",
]
