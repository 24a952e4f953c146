"""Tables of social validation (created by migration t0009)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from core.db import territory_metadata

matrix_rooms = sa.Table(
    "matrix_rooms",
    territory_metadata,
    sa.Column("key", sa.Text, primary_key=True),  # "space", or the zone's id
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("zone_id", UUID(as_uuid=True)),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("alias", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

matrix_links = sa.Table(
    "matrix_links",
    territory_metadata,
    sa.Column("mxid", sa.Text, primary_key=True),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("homeserver", sa.Text, nullable=False),
    sa.Column("via", sa.Text, nullable=False),
    sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

matrix_link_codes = sa.Table(
    "matrix_link_codes",
    territory_metadata,
    sa.Column("code_hash", sa.Text, primary_key=True),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.Column("used_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

matrix_txns = sa.Table(
    "matrix_txns",
    territory_metadata,
    sa.Column("txn_id", sa.Text, primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

social_posts = sa.Table(
    "social_posts",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("zone_id", UUID(as_uuid=True), nullable=False),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("outcome_event_id", sa.Text),
)

social_votes = sa.Table(
    "social_votes",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("voter_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("mxid", sa.Text),
    sa.Column("homeserver", sa.Text),
    sa.Column("event_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

social_outcomes = sa.Table(
    "social_outcomes",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("witnesses", sa.Integer, nullable=False),
    sa.Column("agreement", sa.Float, nullable=False),
    sa.Column("settled_by", UUID(as_uuid=True)),
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
