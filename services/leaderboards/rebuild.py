"""Recount a territory's leaderboards from its ledger (after Redis lost them, when they mirror
another ledger, or to check them).

1. In one consistent read (a repeatable-read snapshot, or the consumer's own transaction:
   entries up to the head it read are committed and never change), read every payout up to
   the ledger head ``S`` and add it up per board in memory; note the ledger's id (the hash of
   its first entry, :func:`keys.ledger_id`).
2. Write the boards, the applied bitmap, the ledger id and the key index under temporary names
   (with a safety TTL, so a crashed rebuild leaves nothing behind for long).
3. One Lua script drops the territory's boards and renames the new ones over them.
4. Apply the payouts after ``S`` through the same once-only script as the consumer: whatever the
   consumer counted between the snapshot and the swap was dropped with the old boards, and is
   counted again here; whatever it counts after the swap is deduplicated by the bitmap.

The entry points are :func:`services.leaderboards.service.rebuild` (the CLI) and
:func:`services.leaderboards.service.count_payout` (the consumer, when the boards it finds
mirror another ledger).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from core.settings import Settings
from services.leaderboards import keys, scores, source
from services.ledger import service as ledger

BATCH = 5000
STAGE_TTL = 3600
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Report:
    territory: str
    upto: int  # the ledger head of the snapshot
    payouts: int
    boards: int
    caught_up: int  # payouts after the snapshot applied by the rebuild itself
    seconds: float


def _bitmap(seqs: list[int]) -> bytes:
    """A Redis bitmap with bit ``seq`` set for each (bit 0 is the high bit of byte 0)."""
    out = bytearray(max(seqs) // 8 + 1)
    for seq in seqs:
        out[seq >> 3] |= 0x80 >> (seq & 7)
    return bytes(out)


@dataclass
class Counted:
    ledger: str  # keys.ledger_id of the ledger counted
    upto: int
    payouts: int
    boards: dict[str, dict[str, int]]
    expiry: dict[Any, Any]  # board key -> expire-at (typed for redis-py's hset)
    seqs: list[int]


async def count(
    conn: AsyncConnection, ns: str, settings: Settings, *, progress: Progress | None = None, clock: float
) -> Counted:
    """Step 1: every payout up to the head ``conn`` sees, per board."""
    boards: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expiry: dict[Any, Any] = {}
    seqs: list[int] = []
    upto, _ = await ledger.head(conn)
    identity = keys.ledger_id(await ledger.genesis_hash(conn))
    after = 0
    while True:
        rows = [source.gain(r) for r in await conn.execute(source.gains_between(after, upto, BATCH))]
        if not rows:
            break
        for g in rows:
            seqs.append(g.seq)
            for key, at in keys.targets(ns, g.zone_id, g.at, settings, clock):
                boards[key][g.player_id] += g.xp
                expiry[key] = at
        after = rows[-1].seq
        if progress:
            progress(after, upto)
    if progress:
        progress(upto, upto)
    return Counted(identity, upto, len(seqs), boards, expiry, seqs)


async def stage_and_swap(redis: Redis, ns: str, counted: Counted) -> None:
    """Steps 2 and 3."""
    suffix = f":rebuild:{uuid.uuid4().hex[:12]}"
    index, applied, mirrored = keys.index(ns), keys.applied(ns), keys.ledger(ns)
    expiry_key = scores.staged_expiry(ns, suffix)
    boards = counted.boards
    async with redis.pipeline(transaction=False) as pipe:
        for key, by_player in boards.items():
            items = list(by_player.items())
            for i in range(0, len(items), 1000):
                pipe.zadd(key + suffix, dict(items[i : i + 1000]))
            pipe.expire(key + suffix, STAGE_TTL)
            if len(pipe) >= 1000:  # send as we go: a big territory's boards need not all sit in memory twice
                await pipe.execute()
        if boards:
            pipe.sadd(index + suffix, *boards)
            pipe.expire(index + suffix, STAGE_TTL)
            pipe.hset(expiry_key, mapping=counted.expiry)
            pipe.expire(expiry_key, STAGE_TTL)
        if counted.seqs:
            pipe.set(applied + suffix, _bitmap(counted.seqs), ex=STAGE_TTL)
        pipe.set(mirrored + suffix, counted.ledger, ex=STAGE_TTL)
        await pipe.execute()
    await scores.swap(redis, ns, suffix)


async def catch_up(
    read: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    redis: Redis,
    ns: str,
    counted: Counted,
    settings: Settings,
    now: Callable[[], float],
) -> int:
    """Step 4: apply the payouts after the counted head; how many were new."""
    caught_up, after = 0, counted.upto
    while True:
        async with read() as conn:
            later = [source.gain(r) for r in await conn.execute(source.gains_between(after, None, BATCH))]
        if not later:
            return caught_up
        for g in later:
            boards_of = keys.targets(ns, g.zone_id, g.at, settings, now())
            caught_up += await scores.apply(redis, ns, g.seq, g.player_id, g.xp, boards_of, ledger=counted.ledger)
        after = later[-1].seq
