"""Impact: one payout per proof, the badges players hold, and their notifications.

Badge definitions are reference data in each server's ``public`` schema (services/impact/badges.py
loads them); a template migration only touches the territory's own schema.

Revision ID: t0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    # The primary key is the "one proof pays out once" guarantee, whatever events are replayed.
    op.create_table(
        "payouts",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("quest_id", UUID(as_uuid=True), nullable=False),
        sa.Column("zone_id", UUID(as_uuid=True), nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        # What approved the proof first; validated_at is set when the community validates it.
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True)),
        # UTC day the good action was done (the proof's captured_at): streaks count these.
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("xp", sa.BigInteger, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("multipliers", JSONB, nullable=False),
        # The ledger entry that paid it (NULL when the quest pays neither XP nor tokens).
        sa.Column("ledger_seq", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("source IN ('auto_approved', 'validated')", name="payouts_source"),
        sa.CheckConstraint("xp >= 0 AND tokens >= 0", name="payouts_amounts"),
    )
    op.create_index("payouts_player_day", "payouts", ["player_id", "day"])
    op.create_index("payouts_player_category", "payouts", ["player_id", "category"])

    op.create_table(
        "player_badges",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("badge", sa.Text, nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("proof_id", UUID(as_uuid=True)),
        sa.CheckConstraint("expires_at IS NULL OR expires_at > awarded_at", name="player_badges_expiry"),
    )
    # A permanent badge is held once. An expiring one may be earned again after it lapses; awards
    # of one player are serialized by the payout's per-player lock, so two never overlap.
    op.create_index(
        "player_badges_permanent",
        "player_badges",
        ["player_id", "badge"],
        unique=True,
        postgresql_where=sa.text("expires_at IS NULL"),
    )
    op.create_index("player_badges_player", "player_badges", ["player_id", "badge", "awarded_at"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("data", JSONB, nullable=False, server_default="{}"),
        # Makes a notification idempotent (e.g. "payout:<proof id>"); NULL: no dedupe.
        sa.Column("key", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("length(kind) BETWEEN 1 AND 40", name="notifications_kind"),
    )
    # Ids are handed out in commit order per player (services/notifications/service.py), so
    # "newest first" and "after Last-Event-ID" are both ranges of this index.
    op.create_index("notifications_player", "notifications", ["player_id", "id"])
    op.create_index(
        "notifications_unread", "notifications", ["player_id", "id"], postgresql_where=sa.text("read_at IS NULL")
    )
    op.create_index(
        "notifications_key",
        "notifications",
        ["player_id", "key"],
        unique=True,
        postgresql_where=sa.text("key IS NOT NULL"),
    )


def downgrade() -> None:
    for table in ("notifications", "player_badges", "payouts"):
        op.drop_table(table)
