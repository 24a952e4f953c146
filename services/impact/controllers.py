"""What proofs pay in a territory (policy, level curve, badges) and the caller's standing."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from core.auth import Identity
from core.errors import territory_errors
from core.http import Conn
from services.impact import service
from services.impact.dto import Badge, LevelCurve, PolicyOut, Standing

READ_ERRORS = territory_errors()


class ImpactController(Controller):
    path = "/api/impact"
    tags = ["impact"]

    @get("/policy", responses=READ_ERRORS, summary="The territory's payout multipliers and level curve")
    async def policy(self, db: NamedDependency[Conn]) -> PolicyOut:
        return await service.policy(db)

    @get("/levels", responses=READ_ERRORS, summary="The territory's level curve: total XP to reach each level")
    async def levels(
        self,
        db: NamedDependency[Conn],
        up_to: Annotated[int | None, QueryParameter(ge=1, le=1000, description="Last level listed")] = None,
    ) -> LevelCurve:
        return await service.level_curve(db, up_to)

    @get("/badges", responses=READ_ERRORS, summary="The badges players can earn and their rules")
    async def list_badges(self, db: NamedDependency[Conn]) -> list[Badge]:
        return await service.list_badges(db)

    @get("/me", responses=READ_ERRORS, summary="The caller's level, XP, Heart tokens and badges in the territory")
    async def me(self, db: NamedDependency[Conn], identity: NamedDependency[Identity]) -> Standing:
        return await service.standing(db, identity)
