"""The caller's notifications in a territory: list, mark read, and a live stream (SSE)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from litestar.response import ServerSentEvent

from core.auth import Identity
from core.errors import NotFound
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.notifications import live, store
from services.notifications.store import Notification, NotificationPage
from services.quests.controllers import READ_ERRORS

NotificationId = Annotated[int, PathParameter(ge=1, le=2**62)]


class Marked(msgspec.Struct):
    marked: int  # how many were unread


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get(responses=READ_ERRORS, summary="The caller's notifications, newest first")
    async def list(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        unread: Annotated[bool, QueryParameter(description="Only unread ones")] = False,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> NotificationPage:
        async with router.read(territory) as conn:
            return await store.list_notifications(
                conn, identity.user_id, unread_only=unread, limit=page_size(request, limit), cursor=cursor
            )

    @post(
        "/{notification_id:int}/read",
        status_code=200,
        responses=READ_ERRORS,
        summary="Mark one of the caller's notifications read (the first read time is kept)",
    )
    async def read(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        notification_id: NotificationId,
    ) -> Notification:
        async with router.transaction(territory) as conn:
            found = await store.mark_read(conn, identity.user_id, notification_id)
        if found is None:
            raise NotFound(f"you have no notification {notification_id} in this territory")
        return found

    @post("/read-all", status_code=200, responses=READ_ERRORS, summary="Mark all the caller's notifications read")
    async def read_all(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Marked:
        async with router.transaction(territory) as conn:
            return Marked(await store.mark_all_read(conn, identity.user_id))

    # Not in the OpenAPI document: an endless text/event-stream has no schema a client
    # generator or a schema-driven test could use. Documented in services/notifications/live.py.
    @get("/stream", include_in_schema=False)
    async def stream(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID", required=False, pattern=r"^[0-9]{1,18}$", description="Resume after this id"
            ),
        ] = None,
    ) -> ServerSentEvent:
        state = request.app.state
        return ServerSentEvent(
            live.stream(
                router,
                territory,
                identity.user_id,
                int(last_event_id) if last_event_id is not None else None,
                hub=live.hub_of(state),
                nats=state.nats,
                settings=state.settings,
            )
        )
