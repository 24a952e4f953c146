"""Zones: a named circle in a territory (centre + radius in metres)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from core.db import territory_metadata

zones = sa.Table(
    "zones",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
