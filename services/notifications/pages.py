"""The notifications page (``/app/notifications``) and the unread count in the navigation
(``/app/notifications/unread``, a fragment base.html loads and refreshes live)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.pages import back_to, page, redirect
from core.pagination import Cursor
from services.notifications import service

PAGE = 20
NotificationId = Annotated[int, PathParameter(ge=1, le=2**62)]
Db = NamedDependency[AsyncConnection]


async def _back(request: Request[Any, Any, Any]) -> str:
    form = await request.form()
    target = form.get("next")
    return back_to(target if isinstance(target, str) else None, "/app/notifications")


class NotificationPages(Controller):
    include_in_schema = False

    @get("/app/notifications")
    async def list(
        self, request: Request[Any, Any, Any], db: Db, identity: NamedDependency[Identity], cursor: Cursor = None
    ) -> Response[Any]:
        found = await service.list_notifications(db, identity.user_id, unread_only=False, limit=PAGE, cursor=cursor)
        here = request.url.path + (f"?cursor={cursor}" if cursor else "")
        return page(request, "notifications/list.html", notifications=found, cursor=cursor, here=here)

    @get("/app/notifications/unread")
    async def unread(
        self, request: Request[Any, Any, Any], db: Db, identity: NamedDependency[Identity]
    ) -> Response[Any]:
        """The navigation's unread count (empty at 0), with its own htmx attributes so it keeps updating."""
        count = await service.unread_count(db, identity.user_id)
        return page(request, "notifications/unread.html", count=count)

    @post("/app/notifications/{notification_id:int}/read")
    async def read(
        self,
        request: Request[Any, Any, Any],
        tx: Db,
        identity: NamedDependency[Identity],
        notification_id: NotificationId,
    ) -> Response[Any]:
        await service.read_one(tx, identity.user_id, notification_id)
        return redirect(request, await _back(request))

    @post("/app/notifications/read-all")
    async def read_all(
        self, request: Request[Any, Any, Any], tx: Db, identity: NamedDependency[Identity]
    ) -> Response[Any]:
        await service.mark_all_read(tx, identity.user_id)
        return redirect(request, await _back(request))
