"""Reading a leaderboard: the top of a board from Redis, display names from the territory."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import Unavailable
from core.routing import Router, Territory
from core.settings import Settings
from services.leaderboards import keys, store
from services.leaderboards.dto import Leaderboard, Rank
from services.players.models import players


def default_name(player_id: str) -> str:
    return f"player-{player_id[:8]}"  # what services.players.service.ensure_player names a newcomer


async def leaderboard(
    router: Router,
    redis: Redis,
    territory: Territory,
    settings: Settings,
    *,
    period: keys.Period,
    on: date,
    zone_id: uuid.UUID | None,
    limit: int,
    me: uuid.UUID,
) -> Leaderboard:
    name = keys.period_name(period, on)
    key = keys.board(territory.code, keys.scope_of(zone_id), name)
    try:
        top = await store.top(redis, key, limit)
        mine = await store.standing(redis, key, str(me))
    except (RedisError, OSError):
        raise Unavailable(
            "leaderboards are unavailable (Redis)", headers={"Retry-After": str(settings.db.retry_after_seconds)}
        ) from None
    ids = {uuid.UUID(p) for p, _ in top} | ({me} if mine else set())
    names: dict[uuid.UUID, str] = {}
    if ids:
        async with router.read(territory) as conn:
            query = sa.select(players.c.id, players.c.display_name).where(players.c.id.in_(list(ids)))
            names = {row.id: row.display_name for row in await conn.execute(query)}

    def rank(position: int, player: str, xp: int) -> Rank:
        pid = uuid.UUID(player)
        return Rank(position, pid, names.get(pid, default_name(player)), xp)

    items = [rank(i + 1, p, xp) for i, (p, xp) in enumerate(top)]
    return Leaderboard(territory.code, period, name, zone_id, items, rank(mine[0], str(me), mine[1]) if mine else None)
