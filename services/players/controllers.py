from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
import sqlalchemy as sa
from litestar import Controller, get
from litestar.di import NamedDependency

from core.auth import Identity
from core.errors import NotFound, error_responses
from core.routing import Router, Territory
from services.players.models import players


class Me(msgspec.Struct):
    id: uuid.UUID
    territory: str
    home_territory: str
    display_name: str
    level: int
    xp: int
    roles: dict[str, list[str]]
    joined_at: datetime


class PlayerController(Controller):
    path = "/api/players"
    tags = ["players"]

    @get("/me", responses=error_responses(401, 403, 404, 423, 429, 503), summary="The caller's player profile")
    async def me(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Me:
        async with router.read(territory) as conn:
            row = (await conn.execute(sa.select(players).where(players.c.id == identity.user_id))).first()
        if row is None:
            raise NotFound(f"you have no player in territory {territory.code!r} yet")
        return Me(
            row.id, territory.code, identity.home, row.display_name, row.level, row.xp, identity.roles, row.created_at
        )
