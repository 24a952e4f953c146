from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import territory_errors
from services.leaderboards import keys, service
from services.leaderboards.dto import Leaderboard


class LeaderboardController(Controller):
    path = "/api/leaderboard"
    tags = ["leaderboards"]

    @get(
        responses=territory_errors(),
        summary="Players by XP earned from approved proofs: all time, a day or an ISO week (UTC)",
        description="Ties are ordered by player id. `me` is the caller's own rank on the same board.",
    )
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncConnection],
        identity: NamedDependency[Identity],
        period: Annotated[keys.Period, QueryParameter()] = "all",
        zone_id: Annotated[uuid.UUID | None, QueryParameter(description="Only XP earned in this zone")] = None,
        on: Annotated[
            date | None, QueryParameter(description="A day in the period to show (default: today, UTC)")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 10,
    ) -> Leaderboard:
        return await service.leaderboard(
            db,
            request.app.state.redis,
            request.app.state.settings,
            period=period,
            on=on or datetime.now(UTC).date(),
            zone_id=zone_id,
            limit=limit,
            me=identity.user_id,
        )
