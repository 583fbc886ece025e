"""The OfficeFlow store: its own database (not Airflow's), SQLAlchemy 2 models, Alembic migrations."""

from include.officeflow.store.db import get_engine, migrate, session_scope, task_store_url
from include.officeflow.store.models import (
    AuditLog,
    Base,
    DeliveryStatus,
    Document,
    DocumentReader,
    DocumentVersion,
    EmailDelivery,
    EmailSuppression,
    EventStatus,
    WebhookEndpoint,
    WebhookEvent,
    Workflow,
    WorkflowVersion,
)

__all__ = [
    "AuditLog",
    "Base",
    "DeliveryStatus",
    "Document",
    "DocumentReader",
    "DocumentVersion",
    "EmailDelivery",
    "EmailSuppression",
    "EventStatus",
    "WebhookEndpoint",
    "WebhookEvent",
    "Workflow",
    "WorkflowVersion",
    "get_engine",
    "migrate",
    "session_scope",
    "task_store_url",
]
