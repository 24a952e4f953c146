"""Quests and assignments (tables created by migration t0005)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from core.db import territory_metadata

quests = sa.Table(
    "quests",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("zone_id", UUID(as_uuid=True), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("base_xp", sa.Integer, nullable=False),
    sa.Column("base_tokens", sa.Integer, nullable=False),
    sa.Column("difficulty", sa.SmallInteger, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True)),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
    sa.Column("max_completions", sa.Integer, nullable=False),
    sa.Column("created_by", UUID(as_uuid=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

assignments = sa.Table(
    "assignments",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("quest_id", UUID(as_uuid=True), nullable=False),
    sa.Column("player_id", UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("submitted_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

OPEN = ("active", "submitted")
