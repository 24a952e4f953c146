"""The registry API for global admins."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter

from core.auth import global_admin
from core.errors import error_responses
from core.pagination import Cursor, Limit, page_size
from services.registry.dto import ServerOut, TerritoryIn, TerritoryOut, TerritoryPage
from territories import registry
from territories.routing import Router

CodePath = Annotated[str, PathParameter(pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]


def _out(t: Any) -> TerritoryOut:
    return msgspec.convert(registry.territory_view(t), TerritoryOut)


class RegistryController(Controller):
    path = "/api/registry"
    tags = ["registry"]
    guards = [global_admin]
    security = [{"adminToken": []}]

    @get("/territories", responses=error_responses(401), summary="List territories")
    async def list_territories(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        limit: Limit = None,
        cursor: Cursor = None,
        status: FromQuery[Literal["provisioning", "active", "suspended"] | None] = None,
    ) -> TerritoryPage:
        size = page_size(request, limit)
        rows, next_cursor = await registry.list_territories(router, limit=size, cursor=cursor, status=status)
        return TerritoryPage([_out(t) for t in rows], next_cursor)

    @post(
        "/territories",
        status_code=201,
        responses={
            **error_responses(401, 404, 409, 503),
            200: ResponseSpec(data_container=TerritoryOut, description="Already existed with these settings"),
        },
        summary="Create and provision a territory on a database server",
    )
    async def create_territory(
        self, router: NamedDependency[Router], data: JSONBody[TerritoryIn]
    ) -> Response[TerritoryOut]:
        territory, created = await registry.create_territory(
            router,
            data.code,
            data.name.strip(),
            data.server,
            actor="admin-token",
            residency_region=data.residency_region,
            matrix_homeserver=data.matrix_homeserver,
        )
        return Response(_out(territory), status_code=201 if created else 200)

    @get("/territories/{code:str}", responses=error_responses(401, 404), summary="Show a territory")
    async def get_territory(self, router: NamedDependency[Router], code: CodePath) -> TerritoryOut:
        return _out(await registry.get_territory(router, code))

    @post("/territories/{code:str}/suspend", status_code=200, responses=error_responses(401, 404, 409))
    async def suspend(self, router: NamedDependency[Router], code: CodePath) -> TerritoryOut:
        return _out(await registry.set_status(router, code, "suspended", actor="admin-token"))

    @post("/territories/{code:str}/resume", status_code=200, responses=error_responses(401, 404, 409))
    async def resume(self, router: NamedDependency[Router], code: CodePath) -> TerritoryOut:
        return _out(await registry.set_status(router, code, "active", actor="admin-token"))

    @get("/servers", responses=error_responses(401), summary="List database servers")
    async def list_servers(self, router: NamedDependency[Router]) -> list[ServerOut]:
        return [msgspec.convert(s, ServerOut) for s in await registry.list_servers(router)]
