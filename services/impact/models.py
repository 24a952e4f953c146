"""Impact tables: payouts and player badges (territory migration t0007), and the badge
definitions in the server's ``public`` schema (services/impact/badges.py creates and fills it)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from core.db import territory_metadata

payouts = sa.Table(
    "payouts",
    territory_metadata,
    sa.Column("proof_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("quest_id", UUID(as_uuid=True), nullable=False),
    sa.Column("zone_id", UUID(as_uuid=True), nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("validated_at", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("xp", sa.BigInteger, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("multipliers", JSONB, nullable=False),
    sa.Column("ledger_seq", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

player_badges = sa.Table(
    "player_badges",
    territory_metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("badge", sa.Text, nullable=False),
    sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("proof_id", UUID(as_uuid=True)),
)

# Reference data shared by the territories of a server. An explicit schema: the router's
# schema_translate_map only renames schema-less (territory) tables, so this stays "public".
public_metadata = sa.MetaData(schema="public")

badge_definitions = sa.Table(
    "badge_definitions",
    public_metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("rule", JSONB, nullable=False),
    sa.Column("valid_days", sa.Integer),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("valid_days IS NULL OR valid_days >= 1", name="badge_definitions_valid_days"),
)
