"""The player's home page (``/app``): where they stand, and what happened lately."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.pages import page
from core.routing import Territory
from services.impact import service as impact

Db = NamedDependency[AsyncConnection]


class PlayerPages(Controller):
    include_in_schema = False

    @get("/app")
    async def home(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Response[Any]:
        standing = await impact.standing(db, identity)
        return page(request, "players/home.html", standing=standing, territory=territory)
