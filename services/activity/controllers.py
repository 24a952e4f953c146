"""The request's territory's activity feed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from core.errors import territory_errors
from core.http import Conn
from core.pagination import Cursor, Limit, page_size
from services.activity import service
from services.activity.dto import ActivityPage

READ_ERRORS = territory_errors()


class ActivityController(Controller):
    path = "/api/activity"
    tags = ["activity"]

    @get(responses=READ_ERRORS, summary="The territory's activity feed, newest first")
    async def feed(
        self, request: Request[Any, Any, Any], db: NamedDependency[Conn], limit: Limit = None, cursor: Cursor = None
    ) -> ActivityPage:
        items, next_cursor = await service.feed(db, limit=page_size(request, limit), cursor=cursor)
        return ActivityPage(items, next_cursor)
