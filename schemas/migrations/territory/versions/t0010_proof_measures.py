"""Proofs carry what the player declares the good deed measured (minutes spent, people helped)
and when their payout was made.

Revision ID: t0010
"""

import sqlalchemy as sa
from alembic import op

revision = "t0010"
down_revision = "t0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("proofs", sa.Column("duration_minutes", sa.Integer))
    op.add_column("proofs", sa.Column("beneficiaries", sa.Integer))
    op.add_column("proofs", sa.Column("paid_at", sa.DateTime(timezone=True)))
    op.create_check_constraint("proofs_duration", "proofs", "duration_minutes BETWEEN 1 AND 10080")
    op.create_check_constraint("proofs_beneficiaries", "proofs", "beneficiaries BETWEEN 1 AND 10000000")


def downgrade() -> None:
    op.drop_constraint("proofs_beneficiaries", "proofs")
    op.drop_constraint("proofs_duration", "proofs")
    op.drop_column("proofs", "paid_at")
    op.drop_column("proofs", "beneficiaries")
    op.drop_column("proofs", "duration_minutes")
