"""identity_accounts: the accounts provisioning created or adopted, deprovisioned or deleted

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

``identity_accounts``: one row per provider account OfficeFlow provisioned (unique on provider and the provider's
account id) with its ``state`` and the run that last changed it; the ``com.officeflow.account.*`` domain events
are written in the transaction of each change. No login or name is stored: the provider holds those.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("employee_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("provider_status", sa.String(32)),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "account_id", name="uq_identity_accounts_provider_account"),
    )
    op.create_index("ix_identity_accounts_organization_id", "identity_accounts", ["organization_id"])
    op.create_index("ix_identity_accounts_employee_id", "identity_accounts", ["employee_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_accounts_employee_id", table_name="identity_accounts")
    op.drop_index("ix_identity_accounts_organization_id", table_name="identity_accounts")
    op.drop_table("identity_accounts")
