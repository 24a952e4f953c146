"""The leaderboards' entry points: read a board, count a payout, rebuild from the ledger.

Redis holds a view of the ledger under this node's prefix (:func:`keys.prefix`), and records
which ledger it mirrors (the hash of its first entry). A payout counted on boards of another
ledger (the territory recreated, the database restored, Redis emptied) rebuilds them first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date

import sqlalchemy as sa
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import Unavailable
from core.routing import Router, territory_of
from core.settings import Settings
from services.leaderboards import keys, scores, source
from services.leaderboards import rebuild as recount
from services.leaderboards.dto import Leaderboard, Rank
from services.leaderboards.rebuild import Progress, Report
from services.ledger import service as ledger
from services.players.models import players

log = structlog.get_logger(__name__)


def default_name(player_id: str) -> str:
    return f"player-{player_id[:8]}"  # what services.players.service.ensure_player names a newcomer


async def leaderboard(
    conn: AsyncConnection,
    redis: Redis,
    settings: Settings,
    *,
    period: keys.Period,
    on: date,
    zone_id: uuid.UUID | None,
    limit: int,
    me: uuid.UUID,
) -> Leaderboard:
    """A board of ``conn``'s territory, display names read on ``conn``.

    Players who chose not to appear on leaderboards (``players.on_leaderboards``) are left out
    when the board is read (Redis keeps counting what the ledger says, so coming back is
    immediate): the others' ranks close up, and ``me`` is None for a caller who opted out
    (``hidden`` says so)."""
    code = territory_of(conn)
    name = keys.period_name(period, on)
    key = keys.board(keys.prefix(settings, code), keys.scope_of(zone_id), name)
    hidden = {str(r.id) for r in await conn.execute(sa.select(players.c.id).where(~players.c.on_leaderboards))}
    try:
        # Enough of the top to fill the list once the hidden players are taken out.
        top = [(p, xp) for p, xp in await scores.top(redis, key, limit + len(hidden)) if p not in hidden][:limit]
        mine = None if str(me) in hidden else await scores.standing(redis, key, str(me))
        if mine is not None and hidden:
            mine = (mine[0] - await scores.ahead_of(redis, key, str(me), mine[1], sorted(hidden)), mine[1])
    except (RedisError, OSError):
        raise Unavailable(
            "leaderboards are unavailable (Redis)", headers={"Retry-After": str(settings.db.retry_after_seconds)}
        ) from None
    ids = {uuid.UUID(p) for p, _ in top} | ({me} if mine else set())
    names: dict[uuid.UUID, str] = {}
    if ids:
        query = sa.select(players.c.id, players.c.display_name).where(players.c.id.in_(list(ids)))
        names = {row.id: row.display_name for row in await conn.execute(query)}

    def rank(position: int, player: str, xp: int) -> Rank:
        pid = uuid.UUID(player)
        return Rank(position, pid, names.get(pid, default_name(player)), xp)

    items = [rank(i + 1, p, xp) for i, (p, xp) in enumerate(top)]
    you = rank(mine[0], str(me), mine[1]) if mine else None
    return Leaderboard(code, period, name, zone_id, items, you, str(me) in hidden)


async def count_payout(
    conn: AsyncConnection, redis: Redis, seq: int, settings: Settings, *, now: Callable[[], float] = time.time
) -> bool:
    """Count ledger entry ``seq`` of ``conn``'s territory (a proof payout) on its boards, once;
    True if it was counted now. Boards that mirror another ledger are rebuilt from this one
    first, in ``conn``'s transaction (the rebuild counts ``seq`` too)."""
    code = territory_of(conn)
    row = (await conn.execute(source.gain_at(seq))).first()
    if row is None:  # not a proof payout with XP (nothing to count), or the wrong seq: say so, go on
        log.warning("payout.made names no XP payout in the ledger", territory=code, seq=seq)
        return False
    g = source.gain(row)
    ns = keys.prefix(settings, code)
    mirrored = keys.ledger_id(await ledger.genesis_hash(conn))
    boards = keys.targets(ns, g.zone_id, g.at, settings, now())
    try:
        return await scores.apply(redis, ns, g.seq, g.player_id, g.xp, boards, ledger=mirrored)
    except scores.OtherLedger:
        log.warning("leaderboards mirror another ledger; rebuilding them from this one", territory=code)
        report = await rebuild_in(conn, redis, settings, now=now)
        log.info("leaderboards rebuilt", territory=code, payouts=report.payouts, upto=report.upto)
        return True


async def rebuild_in(
    conn: AsyncConnection, redis: Redis, settings: Settings, *, now: Callable[[], float] = time.time
) -> Report:
    """Recount ``conn``'s territory's boards from its ledger, reading on ``conn`` alone."""
    started, code = time.perf_counter(), territory_of(conn)
    ns = keys.prefix(settings, code)
    counted = await recount.count(conn, ns, settings, clock=now())
    await recount.stage_and_swap(redis, ns, counted)
    caught_up = await recount.catch_up(lambda: nullcontext(conn), redis, ns, counted, settings, now)
    return Report(code, counted.upto, counted.payouts, len(counted.boards), caught_up, time.perf_counter() - started)


async def rebuild(
    router: Router,
    redis: Redis,
    code: str,
    settings: Settings,
    *,
    progress: Progress | None = None,
    now: Callable[[], float] = time.time,
) -> Report:
    """``oneheart leaderboard rebuild CODE``: recount from a ledger snapshot, swap the boards in,
    then apply what came after the snapshot (safe while the consumer runs)."""
    started = time.perf_counter()
    territory = await router.lookup(code)
    ns = keys.prefix(settings, code)
    async with ledger.snapshot(router, territory) as conn:
        counted = await recount.count(conn, ns, settings, progress=progress, clock=now())
    await recount.stage_and_swap(redis, ns, counted)
    caught_up = await recount.catch_up(lambda: router.read(territory), redis, ns, counted, settings, now)
    return Report(code, counted.upto, counted.payouts, len(counted.boards), caught_up, time.perf_counter() - started)
