from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from core.auth import Identity, require_role
from core.errors import InvalidInput, error_responses
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.players.service import ensure_player
from services.quests.dto import Assignment, AssignmentPage, Quest, QuestIn, QuestPage, QuestType
from services.quests.service import QuestFilter, create_quest, get_quest, history, list_quests, start_quest

READ_ERRORS = error_responses(401, 403, 404, 423, 429, 503)


class QuestController(Controller):
    path = "/api/quests"
    tags = ["quests"]

    @get(responses=READ_ERRORS, summary="List open quests, in a zone or near a point (nearest first)")
    async def list(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        zone_id: Annotated[uuid.UUID | None, QueryParameter(description="Only this zone's quests")] = None,
        lat: Annotated[float | None, QueryParameter(ge=-90, le=90)] = None,
        lng: Annotated[float | None, QueryParameter(ge=-180, le=180)] = None,
        radius_km: Annotated[float, QueryParameter(gt=0, le=500, description="With lat/lng")] = 25.0,
        type: Annotated[QuestType | None, QueryParameter()] = None,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        include_closed: Annotated[bool, QueryParameter(description="Also quests not open now")] = False,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> QuestPage:
        if (lat is None) != (lng is None):
            raise InvalidInput("give both lat and lng, or neither")
        near = (lat, lng, radius_km * 1000) if lat is not None and lng is not None else None
        where = QuestFilter(zone_id, near, type, category, not include_closed)
        async with router.read(territory) as conn:
            items, next_cursor = await list_quests(
                conn, identity.user_id, where, limit=page_size(request, limit), cursor=cursor
            )
        return QuestPage(items, next_cursor)

    @post(
        status_code=201,
        responses=error_responses(401, 403, 404, 422, 423, 429, 503),
        summary="Create a quest in a zone (operators)",
    )
    async def create(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[QuestIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Quest]:
        require_role(identity, "operator", territory.code)
        body = msgspec.to_builtins(data)
        async with router.transaction(territory) as conn:
            return await answer_once(
                conn,
                idempotency_key,
                ("POST", "/api/quests", body),
                201,
                lambda: create_quest(conn, data, identity.user_id),
            )

    @get("/history", responses=READ_ERRORS, summary="The caller's assignments, newest first")
    async def history(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> AssignmentPage:
        async with router.read(territory) as conn:
            items, next_cursor = await history(conn, identity.user_id, limit=page_size(request, limit), cursor=cursor)
        return AssignmentPage(items, next_cursor)

    @get("/{quest_id:uuid}", responses=READ_ERRORS, summary="One quest, with the caller's standing")
    async def show(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Quest:
        async with router.read(territory) as conn:
            return await get_quest(conn, quest_id, identity.user_id)

    @post(
        "/{quest_id:uuid}/start",
        responses=error_responses(401, 403, 404, 409, 423, 429, 503),
        summary="Start a quest (201); the open assignment is returned (200) if already started",
    )
    async def start(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Assignment]:
        require_role(identity, "player", territory.code)
        async with router.transaction(territory) as conn:
            await ensure_player(conn, identity.user_id)
            assignment, created = await start_quest(conn, quest_id, identity.user_id)
        return Response(assignment, status_code=201 if created else 200)
