from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.di import NamedDependency

from core.errors import error_responses
from core.pagination import Cursor, Limit, decode_int_cursor, encode_cursor, page_size
from core.routing import Router, Territory
from services.activity.models import activity


class ActivityItem(msgspec.Struct):
    id: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class ActivityPage(msgspec.Struct):
    items: list[ActivityItem]
    next_cursor: str | None


class ActivityController(Controller):
    path = "/api/activity"
    tags = ["activity"]

    @get(responses=error_responses(401, 403, 404, 423, 429, 503), summary="The territory's activity feed, newest first")
    async def feed(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ActivityPage:
        size = page_size(request, limit)
        query = sa.select(activity).order_by(activity.c.id.desc()).limit(size + 1)
        if cursor:
            query = query.where(activity.c.id < decode_int_cursor(cursor))
        async with router.read(territory) as conn:
            rows = (await conn.execute(query)).all()
        items = [ActivityItem(r.id, r.type, r.occurred_at, r.data) for r in rows[:size]]
        return ActivityPage(items, encode_cursor(str(items[-1].id)) if len(rows) > size else None)
