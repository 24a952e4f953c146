from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from core.auth import Identity, require_role
from core.errors import error_responses
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.zones.dto import Zone, ZoneIn, ZonePage
from services.zones.service import create_zone, list_zones


class ZoneController(Controller):
    path = "/api/zones"
    tags = ["zones"]

    @get(responses=error_responses(401, 403, 404, 423, 429, 503), summary="List the territory's zones")
    async def list(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ZonePage:
        size = page_size(request, limit)
        async with router.read(territory) as conn:
            items, next_cursor = await list_zones(conn, limit=size, cursor=cursor)
        return ZonePage(items, next_cursor)

    @post(
        status_code=201,
        responses=error_responses(401, 403, 404, 422, 423, 429, 503),
        summary="Create a zone (operators; emits zone.created)",
    )
    async def create(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[ZoneIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Zone]:
        require_role(identity, "operator", territory.code)
        body = msgspec.to_builtins(data)
        async with router.transaction(territory) as conn:
            return await answer_once(
                conn,
                idempotency_key,
                ("POST", "/api/zones", body),
                201,
                lambda: create_zone(conn, territory.code, data),
            )
