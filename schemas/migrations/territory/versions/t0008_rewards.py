"""Rewards marketplace, redemptions, and sponsors' contributions to pools.

Tokens themselves live in the ledger (t0006); these tables say what an entry was for. Each row
names its ledger entry (``seq``), written in the same transaction.

Revision ID: t0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t0008"
down_revision = "t0007"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("price > 0", name="rewards_price"),
        # The last line of defence against overselling: stock never goes below zero.
        sa.CheckConstraint("stock >= 0", name="rewards_stock"),
    )
    op.create_index("rewards_page", "rewards", ["created_at", "id"])

    op.create_table(
        "redemptions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("reward_id", UUID(as_uuid=True), sa.ForeignKey("rewards.id"), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.ForeignKey("ledger_entries.seq"), nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="redeemed"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("price > 0", name="redemptions_price"),
        sa.CheckConstraint("status IN ('redeemed', 'fulfilled', 'cancelled')", name="redemptions_status"),
    )
    op.create_index("redemptions_player", "redemptions", ["player_id", "created_at", "id"])
    op.create_index("redemptions_reward", "redemptions", ["reward_id", "created_at"])

    op.create_table(
        "contributions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("sponsor_id", UUID(as_uuid=True), nullable=False),
        sa.Column("pool", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.ForeignKey("ledger_entries.seq"), nullable=False),
        sa.Column("memo", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("pool IN ('territory', 'global')", name="contributions_pool"),
        sa.CheckConstraint("amount > 0", name="contributions_amount"),
    )
    op.create_index("contributions_pool", "contributions", ["pool", "created_at", "id"])
    op.create_index("contributions_sponsor", "contributions", ["sponsor_id", "created_at"])


def downgrade() -> None:
    for table in ("contributions", "redemptions", "rewards"):
        op.drop_table(table)
