"""The caller's notifications in a territory: list, mark read, and a live stream (SSE)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from litestar.response import ServerSentEvent
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import territory_errors
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.notifications import live, service
from services.notifications.dto import Marked, Notification, NotificationPage

# Only the caller's own notifications: any signed-in user of the territory may ask (no role needed).
ERRORS = territory_errors()
NotificationId = Annotated[int, PathParameter(ge=1, le=2**62)]
Db = NamedDependency[AsyncConnection]
Tx = NamedDependency[AsyncConnection]


def provide_streams(request: Request[Any, Any, Any], router: NamedDependency[Router]) -> live.Streams:
    state = request.app.state
    return live.Streams(router, live.hub_of(state), state.nats, state.settings)


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]
    dependencies = {"streams": Provide(provide_streams, sync_to_thread=False)}

    @get(responses=ERRORS, summary="The caller's notifications, newest first")
    async def list(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        unread: Annotated[bool, QueryParameter(description="Only unread ones")] = False,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> NotificationPage:
        return await service.list_notifications(
            db, identity.user_id, unread_only=unread, limit=page_size(request, limit), cursor=cursor
        )

    @post(
        "/{notification_id:int}/read",
        status_code=200,
        responses=ERRORS,
        summary="Mark one of the caller's notifications read (the first read time is kept)",
    )
    async def read(self, tx: Tx, identity: NamedDependency[Identity], notification_id: NotificationId) -> Notification:
        return await service.read_one(tx, identity.user_id, notification_id)

    @post("/read-all", status_code=200, responses=ERRORS, summary="Mark all the caller's notifications read")
    async def read_all(self, tx: Tx, identity: NamedDependency[Identity]) -> Marked:
        return Marked(await service.mark_all_read(tx, identity.user_id))

    # Not in the OpenAPI document: an endless text/event-stream has no schema a client
    # generator or a schema-driven test could use. Documented in services/notifications/live.py.
    @get("/stream", include_in_schema=False)
    async def stream(
        self,
        streams: NamedDependency[live.Streams],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID", required=False, pattern=r"^[0-9]{1,18}$", description="Resume after this id"
            ),
        ] = None,
    ) -> ServerSentEvent:
        last = int(last_event_id) if last_event_id is not None else None
        return ServerSentEvent(streams.open(territory, identity.user_id, last))
