"""Sponsors' contributions to pools (created by territory migration t0008)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from core.db import territory_metadata

contributions = sa.Table(
    "contributions",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("sponsor_id", UUID(as_uuid=True), nullable=False),
    sa.Column("pool", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("memo", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
