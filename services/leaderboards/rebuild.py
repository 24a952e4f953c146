"""Recount a territory's leaderboards from its ledger (after Redis lost them, or to check them).

1. In one repeatable-read snapshot, read every payout up to the ledger head ``S`` and add it up
   per board in memory.
2. Write the boards, the applied bitmap and the key index under temporary names (with a safety
   TTL, so a crashed rebuild leaves nothing behind for long).
3. One Lua script drops the territory's boards and renames the new ones over them.
4. Apply the payouts after ``S`` through the same once-only script as the consumer: whatever the
   consumer counted between the snapshot and the swap was dropped with the old boards, and is
   counted again here; whatever it counts after the swap is deduplicated by the bitmap.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from core.routing import Router
from core.settings import Settings
from services.leaderboards import keys, source, store
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


async def rebuild(
    router: Router,
    redis: Redis,
    territory: str,
    settings: Settings,
    *,
    progress: Progress | None = None,
    now: Callable[[], float] = time.time,
) -> Report:
    started = time.perf_counter()
    boards: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expiry: dict[Any, Any] = {}  # board key -> expire-at (typed for redis-py's hset)
    seqs: list[int] = []
    clock = now()
    async with ledger.snapshot(router, territory) as conn:
        upto, _ = await ledger.head(conn)
        after = 0
        while True:
            rows = [source.gain(r) for r in await conn.execute(source.gains_between(after, upto, BATCH))]
            if not rows:
                break
            for g in rows:
                seqs.append(g.seq)
                for key, at in keys.targets(territory, g.zone_id, g.at, settings, clock):
                    boards[key][g.player_id] += g.xp
                    expiry[key] = at
            after = rows[-1].seq
            if progress:
                progress(after, upto)
    if progress:
        progress(upto, upto)

    suffix = f":rebuild:{uuid.uuid4().hex[:12]}"
    index, applied = keys.index(territory), keys.applied(territory)
    expiry_key = keys.prefix(territory) + ":expiry" + suffix
    async with redis.pipeline(transaction=False) as pipe:
        for key, scores in boards.items():
            items = list(scores.items())
            for i in range(0, len(items), 1000):
                pipe.zadd(key + suffix, dict(items[i : i + 1000]))
            pipe.expire(key + suffix, STAGE_TTL)
            if len(pipe) >= 1000:  # send as we go: a big territory's boards need not all sit in memory twice
                await pipe.execute()
        if boards:
            pipe.sadd(index + suffix, *boards)
            pipe.expire(index + suffix, STAGE_TTL)
            pipe.hset(expiry_key, mapping=expiry)
            pipe.expire(expiry_key, STAGE_TTL)
        if seqs:
            pipe.set(applied + suffix, _bitmap(seqs), ex=STAGE_TTL)
        await pipe.execute()
    await store.swap(redis, territory, suffix)

    caught_up, after = 0, upto
    while True:
        async with router.read(territory) as conn:
            later = [source.gain(r) for r in await conn.execute(source.gains_between(after, None, BATCH))]
        if not later:
            break
        for g in later:
            boards_of = keys.targets(territory, g.zone_id, g.at, settings, now())
            caught_up += await store.apply(redis, territory, g.seq, g.player_id, g.xp, boards_of)
        after = later[-1].seq
    return Report(territory, upto, len(seqs), len(boards), caught_up, time.perf_counter() - started)
