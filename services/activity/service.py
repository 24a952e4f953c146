"""The territory's activity feed (rows written by :mod:`services.activity.consumers`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import row_to
from core.pagination import decode_int_cursor, encode_cursor
from services.activity.dto import ActivityItem
from services.activity.models import activity


async def feed(conn: AsyncConnection, *, limit: int, cursor: str | None) -> tuple[list[ActivityItem], str | None]:
    """Newest first, keyset-paginated by id."""
    query = sa.select(activity.c.id, activity.c.type, activity.c.occurred_at, activity.c.data)
    query = query.order_by(activity.c.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(activity.c.id < decode_int_cursor(cursor))
    rows = (await conn.execute(query)).all()
    items = [row_to(ActivityItem, r) for r in rows[:limit]]
    return items, (encode_cursor(str(items[-1].id)) if len(rows) > limit else None)
