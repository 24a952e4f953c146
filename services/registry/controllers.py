"""The registry API for global admins (or the bootstrap token until the first one exists)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter

from core.errors import error_responses
from core.pagination import Cursor, Limit, page_size
from core.routing import Router
from services.auth.guards import global_admin
from services.registry.dto import ServerOut, TerritoryIn, TerritoryOut, TerritoryPage
from territories.registry import Registry, territory_view

CodePath = Annotated[str, PathParameter(pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]
# Every registry route: no or a bad token (401), a signed-in user who is not a global admin (403).
ERRORS = (401, 403, 429)


def provide_registry(router: NamedDependency[Router], actor: NamedDependency[str]) -> Registry:
    """The registry, acting for the caller the guard recorded (a user id or the bootstrap token)."""
    return Registry(router, actor)


def _out(t: Any) -> TerritoryOut:
    return msgspec.convert(territory_view(t), TerritoryOut)


class RegistryController(Controller):
    path = "/api/registry"
    tags = ["registry"]
    guards = [global_admin]
    security = [{"adminToken": []}]
    dependencies = {"registry": Provide(provide_registry, sync_to_thread=False)}

    @get("/territories", responses=error_responses(*ERRORS, 503), summary="List territories")
    async def list_territories(
        self,
        request: Request[Any, Any, Any],
        registry: NamedDependency[Registry],
        limit: Limit = None,
        cursor: Cursor = None,
        status: FromQuery[Literal["provisioning", "active", "suspended"] | None] = None,
    ) -> TerritoryPage:
        rows, next_cursor = await registry.list_territories(
            limit=page_size(request, limit), cursor=cursor, status=status
        )
        return TerritoryPage([_out(t) for t in rows], next_cursor)

    @post(
        "/territories",
        status_code=201,
        responses={
            **error_responses(*ERRORS, 404, 409, 503),
            200: ResponseSpec(data_container=TerritoryOut, description="Already existed with these settings"),
        },
        summary="Create and provision a territory on a database server",
    )
    async def create_territory(
        self, registry: NamedDependency[Registry], data: JSONBody[TerritoryIn]
    ) -> Response[TerritoryOut]:
        territory, created = await registry.create_territory(
            data.code,
            data.name.strip(),
            data.server,
            residency_region=data.residency_region,
            matrix_homeserver=data.matrix_homeserver,
        )
        return Response(_out(territory), status_code=201 if created else 200)

    @get("/territories/{code:str}", responses=error_responses(*ERRORS, 404, 503), summary="Show a territory")
    async def get_territory(self, registry: NamedDependency[Registry], code: CodePath) -> TerritoryOut:
        return _out(await registry.get_territory(code))

    @post("/territories/{code:str}/suspend", status_code=200, responses=error_responses(*ERRORS, 404, 409, 503))
    async def suspend(self, registry: NamedDependency[Registry], code: CodePath) -> TerritoryOut:
        return _out(await registry.set_status(code, "suspended"))

    @post("/territories/{code:str}/resume", status_code=200, responses=error_responses(*ERRORS, 404, 409, 503))
    async def resume(self, registry: NamedDependency[Registry], code: CodePath) -> TerritoryOut:
        return _out(await registry.set_status(code, "active"))

    @get("/servers", responses=error_responses(*ERRORS, 503), summary="List database servers")
    async def list_servers(self, registry: NamedDependency[Registry]) -> list[ServerOut]:
        return [msgspec.convert(s, ServerOut) for s in await registry.list_servers()]
