"""Proofs, their evidence and verification results (migrations t0005, t0010)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from core.db import territory_metadata

proofs = sa.Table(
    "proofs",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("assignment_id", UUID(as_uuid=True), nullable=False),
    sa.Column("quest_id", UUID(as_uuid=True), nullable=False),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("accuracy_m", sa.Float, nullable=False),
    sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False, server_default="submitted"),
    sa.Column("score", sa.SmallInteger),
    sa.Column("flags", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("verified_at", sa.DateTime(timezone=True)),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("beneficiaries", sa.Integer),
    sa.Column("paid_at", sa.DateTime(timezone=True)),
)

evidence = sa.Table(
    "evidence",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("cid", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("mime", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("sharpness", sa.Float),
    sa.Column("phash", sa.BigInteger),
    sa.Column("exif", JSONB, nullable=False, server_default="{}"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

verifications = sa.Table(
    "verifications",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("score", sa.SmallInteger, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("flags", ARRAY(sa.Text), nullable=False),
    sa.Column("signals", JSONB, nullable=False),
    sa.Column("features", ARRAY(sa.Float), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Once the community may see a proof (its status is one of these), any player of the territory can.
COMMUNITY_VISIBLE = ("needs_community", "validated", "invalidated")
