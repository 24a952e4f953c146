"""Quests, assignments, proofs with their evidence (IPFS CID) and verification results.

Revision ID: t0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "t0005"
down_revision = "t0004"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "quests",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("zone_id", UUID(as_uuid=True), sa.ForeignKey("zones.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("base_xp", sa.Integer, nullable=False),
        sa.Column("base_tokens", sa.Integer, nullable=False),
        sa.Column("difficulty", sa.SmallInteger, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True)),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("max_completions", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("type IN ('daily', 'story', 'community', 'ascension')", name="quests_type"),
        sa.CheckConstraint("difficulty BETWEEN 1 AND 5", name="quests_difficulty"),
        sa.CheckConstraint("base_xp >= 0 AND base_tokens >= 0 AND max_completions >= 1", name="quests_amounts"),
        sa.CheckConstraint("ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="quests_window"),
    )
    op.create_index("quests_zone", "quests", ["zone_id", "created_at"])
    op.create_index("quests_page", "quests", ["created_at", "id"])

    op.create_table(
        "assignments",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("quest_id", UUID(as_uuid=True), sa.ForeignKey("quests.id"), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('active', 'submitted', 'completed', 'failed')", name="assignments_status"),
    )
    # One open assignment per player and quest; completed/failed ones are history.
    op.create_index(
        "assignments_open",
        "assignments",
        ["quest_id", "player_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('active', 'submitted')"),
    )
    op.create_index("assignments_player", "assignments", ["player_id", "started_at"])

    op.create_table(
        "proofs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("assignment_id", UUID(as_uuid=True), sa.ForeignKey("assignments.id"), nullable=False),
        sa.Column("quest_id", UUID(as_uuid=True), sa.ForeignKey("quests.id"), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lng", sa.Float, nullable=False),
        sa.Column("accuracy_m", sa.Float, nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("status", sa.Text, nullable=False, server_default="submitted"),
        sa.Column("score", sa.SmallInteger),
        sa.Column("flags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('submitted', 'auto_approved', 'needs_community', 'rejected', 'validated', 'invalidated')",
            name="proofs_status",
        ),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 0 AND 100", name="proofs_score"),
    )
    op.create_index("proofs_player", "proofs", ["player_id", "received_at"])
    op.create_index("proofs_page", "proofs", ["received_at", "id"])

    op.create_table(
        "evidence",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), primary_key=True),
        sa.Column("cid", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("mime", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("sharpness", sa.Float),
        # 64-bit perceptual hash as a signed bigint: near duplicates by bit_count(a # b).
        sa.Column("phash", sa.BigInteger),
        sa.Column("exif", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_index("evidence_sha256", "evidence", ["sha256"])

    op.create_table(
        "verifications",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), primary_key=True),
        sa.Column("score", sa.SmallInteger, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("flags", ARRAY(sa.Text), nullable=False),
        sa.Column("signals", JSONB, nullable=False),
        sa.Column("features", ARRAY(sa.Float), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(
            "decision IN ('auto_approved', 'needs_community', 'rejected')", name="verifications_decision"
        ),
    )

    # Per-territory policy (verification thresholds, later the quorum rule): one JSON value per key.
    op.create_table(
        "policies",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )


def downgrade() -> None:
    for table in ("policies", "verifications", "evidence", "proofs", "assignments", "quests"):
        op.drop_table(table)
