"""documents: uploads, versions by upload, metadata and tags, soft delete with retention

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite (dev) rebuilds the table where it cannot alter it; PostgreSQL alters in place.
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("metadata", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_documents_purge_after", ["purge_after"])
    with op.batch_alter_table("document_versions") as batch:
        batch.add_column(sa.Column("filename", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document_versions") as batch:
        batch.drop_column("filename")
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_purge_after")
        batch.drop_column("purge_after")
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
        batch.drop_column("metadata")
