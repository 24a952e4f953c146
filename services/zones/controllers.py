"""Zones of the request's territory: list them; operators create them."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from core.auth import Identity, require_role
from core.errors import territory_errors
from core.http import Conn
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from services.zones.dto import Zone, ZoneIn, ZonePage
from services.zones.service import create_zone, list_zones

READ_ERRORS = territory_errors()
# 403: the caller is not an operator of the territory; 422: an idempotency key reused with another body.
WRITE_ERRORS = territory_errors(422)


class ZoneController(Controller):
    path = "/api/zones"
    tags = ["zones"]

    @get(responses=READ_ERRORS, summary="List the territory's zones")
    async def list(
        self, request: Request[Any, Any, Any], db: NamedDependency[Conn], limit: Limit = None, cursor: Cursor = None
    ) -> ZonePage:
        items, next_cursor = await list_zones(db, limit=page_size(request, limit), cursor=cursor)
        return ZonePage(items, next_cursor)

    @post(status_code=201, responses=WRITE_ERRORS, summary="Create a zone (operators; emits zone.created)")
    async def create(
        self,
        tx: NamedDependency[Conn],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[ZoneIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Zone]:
        require_role(identity, "operator", territory.code)
        request = ("POST", "/api/zones", msgspec.to_builtins(data))
        return await answer_once(tx, idempotency_key, request, 201, lambda: create_zone(tx, data))
