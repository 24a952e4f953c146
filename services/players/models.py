"""A person's profile in one territory (id = ``global.users.id``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from core.db import territory_metadata

players = sa.Table(
    "players",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("xp", sa.BigInteger, nullable=False),
    sa.Column("language", sa.Text),  # a catalog code; None: the browser's language
    sa.Column("on_leaderboards", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
