"""Outbox and inbox, present in every territory schema and in ``global``.

Declared without a schema: the scoped transaction's search_path picks the right one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from core.db import territory_metadata

outbox = sa.Table(
    "outbox",
    territory_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
)

inbox = sa.Table(
    "inbox",
    territory_metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
