"""The leaderboards page (``/app/leaderboards``): the territory's and a zone's boards, by day,
ISO week or all time, with the player's own rank even when it is outside the list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import InvalidInput
from core.pages import page
from core.routing import Territory
from services.leaderboards import keys, service
from services.zones.service import list_zones

LIMIT = 10  # as GET /api/leaderboard; the player's own rank is shown below when outside it
ZONES_LISTED = 200


def _zone_id(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("zone: not a zone id") from None


class LeaderboardPages(Controller):
    include_in_schema = False

    @get("/app/leaderboards")
    async def board(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        period: Annotated[keys.Period, QueryParameter()] = "week",
        zone_param: Annotated[str | None, QueryParameter(name="zone", max_length=36)] = None,
    ) -> Response[Any]:
        """``zone``: a zone's id for its board; empty (the form's first choice) for the territory's."""
        zone = _zone_id(zone_param)
        zones, more = await list_zones(db, limit=ZONES_LISTED, cursor=None)
        board = await service.leaderboard(
            db,
            request.app.state.redis,
            request.app.state.settings,
            period=period,
            on=datetime.now(UTC).date(),
            zone_id=zone,
            limit=LIMIT,
            me=identity.user_id,
        )
        return page(
            request,
            "leaderboards/board.html",
            board=board,
            zones=zones,
            more_zones=more is not None,
            zone=next((z for z in zones if z.id == zone), None),
            zone_id=zone,
            period=period,
            periods=keys.PERIODS,
            territory=territory,
            me=identity.user_id,
        )
