"""Quests of the request's territory: find them (in a zone, near a point), operators create
them, players start them and see their history."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from core.auth import Identity, require_role
from core.errors import territory_errors
from core.http import Conn
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from services.quests.dto import Assignment, AssignmentPage, Quest, QuestIn, QuestPage, QuestType
from services.quests.service import create_quest, get_quest, history, list_quests, quest_filter, start_quest

READ_ERRORS = territory_errors()
# 403: the caller lacks the role (operator to create, player to start); 422: idempotency key reused.
WRITE_ERRORS = territory_errors(422)
START_ERRORS = {
    **territory_errors(409),
    200: ResponseSpec(data_container=Assignment, description="Already started: the open assignment"),
}


class QuestController(Controller):
    path = "/api/quests"
    tags = ["quests"]

    @get(responses=READ_ERRORS, summary="List open quests, in a zone or near a point (nearest first)")
    async def list(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Conn],
        identity: NamedDependency[Identity],
        zone_id: Annotated[uuid.UUID | None, QueryParameter(description="Only this zone's quests")] = None,
        lat: Annotated[float | None, QueryParameter(ge=-90, le=90, description="Kept to 7 decimals")] = None,
        lng: Annotated[float | None, QueryParameter(ge=-180, le=180, description="Kept to 7 decimals")] = None,
        radius_km: Annotated[
            float, QueryParameter(ge=0.001, le=500, description="With lat/lng; 1 m to 500 km, kept to the metre")
        ] = 25.0,
        type: Annotated[QuestType | None, QueryParameter()] = None,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        include_closed: Annotated[bool, QueryParameter(description="Also quests not open now")] = False,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> QuestPage:
        where = quest_filter(
            zone_id=zone_id,
            lat=lat,
            lng=lng,
            radius_km=radius_km,
            type=type,
            category=category,
            include_closed=include_closed,
        )
        items, next_cursor = await list_quests(
            db, identity.user_id, where, limit=page_size(request, limit), cursor=cursor
        )
        return QuestPage(items, next_cursor)

    @post(status_code=201, responses=WRITE_ERRORS, summary="Create a quest in a zone (operators)")
    async def create(
        self,
        tx: NamedDependency[Conn],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[QuestIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Quest]:
        require_role(identity, "operator", territory.code)
        request = ("POST", "/api/quests", msgspec.to_builtins(data))
        return await answer_once(tx, idempotency_key, request, 201, lambda: create_quest(tx, data, identity.user_id))

    @get("/history", responses=READ_ERRORS, summary="The caller's assignments, newest first")
    async def history(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Conn],
        identity: NamedDependency[Identity],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> AssignmentPage:
        items, next_cursor = await history(db, identity.user_id, limit=page_size(request, limit), cursor=cursor)
        return AssignmentPage(items, next_cursor)

    @get("/{quest_id:uuid}", responses=READ_ERRORS, summary="One quest, with the caller's standing")
    async def show(
        self,
        db: NamedDependency[Conn],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Quest:
        return await get_quest(db, quest_id, identity.user_id)

    @post(
        "/{quest_id:uuid}/start",
        status_code=201,
        responses=START_ERRORS,
        summary="Start a quest (201); the open assignment is returned (200) if already started",
    )
    async def start(
        self,
        tx: NamedDependency[Conn],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Assignment]:
        require_role(identity, "player", territory.code)
        assignment, created = await start_quest(tx, quest_id, identity.user_id)
        return Response(assignment, status_code=201 if created else 200)
