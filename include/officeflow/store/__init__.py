"""The OfficeFlow store: its own database (not Airflow's), SQLAlchemy 2 models, Alembic migrations."""

from include.officeflow.store.db import get_engine, migrate, session_scope
from include.officeflow.store.models import AuditLog, Base, EventStatus, WebhookEvent

__all__ = [
    "AuditLog",
    "Base",
    "EventStatus",
    "WebhookEvent",
    "get_engine",
    "migrate",
    "session_scope",
]
