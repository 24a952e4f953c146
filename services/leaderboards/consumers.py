"""Count each payout on the leaderboards as it happens (``payout.made``).

The handler reads the payout's ledger entry (the event only says which one): the leaderboards
then count exactly what a rebuild from the ledger counts, with the same timestamps. Boards
that mirror another ledger are rebuilt first (see :mod:`services.leaderboards.service`).
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.consumers import Consumer
from core.events.envelope import Event
from core.settings import get_settings
from services.leaderboards import service

_redis: Redis | None = None


def redis() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(get_settings().redis.url, socket_connect_timeout=2, socket_timeout=5)
    return _redis


async def count_payout(conn: AsyncConnection, event: Event) -> None:
    if event.data.get("seq") is None or not event.data.get("xp"):  # no entry, or tokens only: no XP to count
        return
    # Redis down: raise, the inbox row rolls back and the event comes again later.
    await service.count_payout(conn, redis(), int(event.data["seq"]), get_settings())


CONSUMERS = [Consumer("leaderboards", "oh.*.payout.made", count_payout)]
