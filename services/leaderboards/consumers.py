"""Count each payout on the leaderboards as it happens (``payout.made``).

The handler reads the payout's ledger entry (the event only says which one): the leaderboards
then count exactly what a rebuild from the ledger counts, with the same timestamps.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.consumers import Consumer
from core.events.envelope import Event
from core.settings import get_settings
from services.leaderboards import keys, source, store

log = structlog.get_logger(__name__)
_redis: Redis | None = None


def redis() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(get_settings().redis.url, socket_connect_timeout=2, socket_timeout=5)
    return _redis


async def count_payout(conn: AsyncConnection, event: Event) -> None:
    if event.data.get("seq") is None or not event.data.get("xp"):  # no entry, or tokens only: no XP to count
        return
    seq = int(event.data["seq"])
    row = (await conn.execute(source.gain_at(seq))).first()
    if row is None:  # not a proof payout with XP (nothing to count), or the wrong seq: say so, go on
        log.warning("payout.made names no XP payout in the ledger", territory=event.territory, seq=seq)
        return
    g = source.gain(row)
    boards = keys.targets(event.territory, g.zone_id, g.at, get_settings(), time.time())
    # Redis down: raise, the inbox row rolls back and the event comes again later.
    await store.apply(redis(), event.territory, g.seq, g.player_id, g.xp, boards)


CONSUMERS = [Consumer("leaderboards", "oh.*.payout.made", count_payout)]
