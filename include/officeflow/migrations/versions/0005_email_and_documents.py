"""email_deliveries, email_suppressions, documents, document_versions, document_readers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_detail", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _ts("created_at"), _ts("updated_at"), _ts("sent_at", True), _ts("event_at", True),
        sa.UniqueConstraint("idempotency_key", name="uq_email_deliveries_idempotency_key"),
    )
    for column in ("organization_id", "provider_message_id", "recipient", "template", "status", "created_at"):
        op.create_index(f"ix_email_deliveries_{column}", "email_deliveries", [column])
    op.create_table(
        "email_suppressions",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text()),
        _ts("created_at"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("logical_key", sa.String(512), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False, server_default="0"),
        _ts("created_at"), _ts("updated_at"),
        sa.UniqueConstraint("organization_id", "logical_key", name="uq_documents_org_key"),
    )
    op.create_table(
        "document_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("storage_uri", sa.String(1024), nullable=False),
        sa.Column("storage_version_id", sa.String(255)),
        sa.Column("checksum_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("template", sa.String(128)),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("document_id", "version", name="uq_document_versions_doc_version"),
    )
    op.create_index("ix_document_versions_document_id", "document_versions", ["document_id"])
    op.create_table(
        "document_readers",
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("principal_type", sa.String(16), primary_key=True),
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column("granted_by", sa.String(255), nullable=False),
        _ts("created_at"),
    )


def downgrade() -> None:
    op.drop_table("document_readers")
    op.drop_index("ix_document_versions_document_id", "document_versions")
    op.drop_table("document_versions")
    op.drop_table("documents")
    op.drop_table("email_suppressions")
    for column in ("organization_id", "provider_message_id", "recipient", "template", "status", "created_at"):
        op.drop_index(f"ix_email_deliveries_{column}", "email_deliveries")
    op.drop_table("email_deliveries")
