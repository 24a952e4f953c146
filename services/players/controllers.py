"""The caller's player profile in the request's territory."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from core.auth import Identity
from core.errors import territory_errors
from core.http import Conn
from services.players import service
from services.players.dto import Me

READ_ERRORS = territory_errors()


class PlayerController(Controller):
    path = "/api/players"
    tags = ["players"]

    @get("/me", responses=READ_ERRORS, summary="The caller's player profile")
    async def me(self, db: NamedDependency[Conn], identity: NamedDependency[Identity]) -> Me:
        return await service.me(db, identity)
