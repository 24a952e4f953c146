"""Social validation in Matrix rooms: rooms, player <-> Matrix links, posts, votes, outcomes,
and the application-service transactions already handled (restart safety).

Revision ID: t0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t0009"
down_revision = "t0008"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    # The territory's space (key "space") and one public room per zone (key = zone id).
    op.create_table(
        "matrix_rooms",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("zone_id", UUID(as_uuid=True)),
        sa.Column("room_id", sa.Text, nullable=False, unique=True),
        sa.Column("alias", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("kind IN ('space', 'zone')", name="matrix_rooms_kind"),
    )
    # One Matrix user speaks for at most one player; a player may link several Matrix users.
    op.create_table(
        "matrix_links",
        sa.Column("mxid", sa.Text, primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("homeserver", sa.Text, nullable=False),
        sa.Column("via", sa.Text, nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("via IN ('sso', 'code')", name="matrix_links_via"),
    )
    op.create_index("matrix_links_player", "matrix_links", ["player_id"])
    # One-time link codes, stored as SHA-256 digests.
    op.create_table(
        "matrix_link_codes",
        sa.Column("code_hash", sa.Text, primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("used_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    # Transactions pushed by the homeserver, recorded in the transaction that applied them:
    # a retried transaction (the gateway died before answering) is acknowledged, not re-applied.
    # The key is the transaction id plus a digest of its event ids (ids restart with Synapse on SQLite).
    op.create_table(
        "matrix_txns",
        sa.Column("txn_id", sa.Text, primary_key=True),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_table(
        "social_posts",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), primary_key=True),
        sa.Column("zone_id", UUID(as_uuid=True), nullable=False),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("outcome_event_id", sa.Text),
    )
    # One vote per witness and proof: a changed vote replaces the old one.
    op.create_table(
        "social_votes",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), nullable=False),
        sa.Column("voter_id", UUID(as_uuid=True), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("mxid", sa.Text),
        # The Matrix user's server (weights remote witnesses); NULL for web votes.
        sa.Column("homeserver", sa.Text),
        # The reaction that cast it (a redaction of this event withdraws the vote).
        sa.Column("event_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("proof_id", "voter_id", name="social_votes_pkey"),
        sa.CheckConstraint("value IN ('agree', 'disagree')", name="social_votes_value"),
        sa.CheckConstraint("source IN ('matrix', 'web')", name="social_votes_source"),
    )
    op.create_index("social_votes_event", "social_votes", ["event_id"])
    # The primary key is the "decided once" guarantee: the outcome row, the proof's status and
    # the proof.validated / proof.rejected event commit together.
    op.create_table(
        "social_outcomes",
        sa.Column("proof_id", UUID(as_uuid=True), sa.ForeignKey("proofs.id"), primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("witnesses", sa.Integer, nullable=False),
        sa.Column("agreement", sa.Float, nullable=False),
        sa.Column("settled_by", UUID(as_uuid=True)),
        sa.Column("reason", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("outcome IN ('validated', 'rejected')", name="social_outcomes_outcome"),
    )


def downgrade() -> None:
    for table in (
        "social_outcomes",
        "social_votes",
        "social_posts",
        "matrix_txns",
        "matrix_link_codes",
        "matrix_links",
        "matrix_rooms",
    ):
        op.drop_table(table)
