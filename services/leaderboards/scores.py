"""The Redis side of the leaderboards: count an entry once, read a board, swap in a rebuild."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from services.leaderboards import keys


class OtherLedger(Exception):
    """The boards mirror another ledger than the one asked about (or none: Redis lost them):
    nothing was counted; rebuild them from the ledger."""


# KEYS: applied bitmap, key index, ledger id, board keys...;
# ARGV: seq, player id, xp, ledger id, expire-at per board (0: never).
# Boards of another ledger (its seqs mean other entries) are left alone: -1. Setting the
# entry's bit first makes the rest a no-op for an entry already counted.
_APPLY = """
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return -1 end
if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return 0 end
for i = 4, #KEYS do
    redis.call('ZINCRBY', KEYS[i], ARGV[3], ARGV[2])
    local at = tonumber(ARGV[i + 1])
    if at > 0 then redis.call('EXPIREAT', KEYS[i], at) end
    redis.call('SADD', KEYS[2], KEYS[i])
end
return 1
"""

# KEYS: index, applied, ledger id, new index, new applied, new ledger id, new expiry hash;
# ARGV: suffix of the new keys.
# Drops every board of the territory and renames the new ones over them, in one step; boards
# take the expiry recorded for them (a period's end), the others lose the safety TTL.
_SWAP = """
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
for _, key in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    local staged = key .. ARGV[1]
    if redis.call('EXISTS', staged) == 1 then
        redis.call('RENAME', staged, key)
        local at = tonumber(redis.call('HGET', KEYS[7], key) or '0')
        if at > 0 then redis.call('EXPIREAT', key, at) else redis.call('PERSIST', key) end
    end
end
for i = 4, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('RENAME', KEYS[i], KEYS[i - 3])
        redis.call('PERSIST', KEYS[i - 3])
    end
end
redis.call('DEL', KEYS[7])
return 1
"""


async def apply(
    redis: Redis, ns: str, seq: int, player_id: str, xp: int, boards: list[tuple[str, int]], *, ledger: str
) -> bool:
    """Add ``xp`` to ``player_id`` on ``boards`` (of namespace ``ns``) unless entry ``seq`` was
    counted; True if it was new. :class:`OtherLedger` when the boards do not mirror ``ledger``
    (:func:`keys.ledger_id`)."""
    script = redis.register_script(_APPLY)
    done = await script(
        keys=[keys.applied(ns), keys.index(ns), keys.ledger(ns), *(k for k, _ in boards)],
        args=[seq, player_id, xp, ledger, *(at for _, at in boards)],
    )
    if done == -1:
        raise OtherLedger(f"the leaderboards under {ns} do not mirror ledger {ledger}")
    return bool(done)


def staged_expiry(ns: str, suffix: str) -> str:
    return f"{ns}:expiry{suffix}"


async def swap(redis: Redis, ns: str, suffix: str) -> None:
    """Replace the namespace's boards by those staged under ``<key><suffix>`` (see :mod:`rebuild`)."""
    index, applied, ledger = keys.index(ns), keys.applied(ns), keys.ledger(ns)
    script = redis.register_script(_SWAP)
    await script(
        keys=[index, applied, ledger, index + suffix, applied + suffix, ledger + suffix, staged_expiry(ns, suffix)],
        args=[suffix],
    )


async def top(redis: Redis, key: str, limit: int) -> list[tuple[str, int]]:
    """The first ``limit`` players of a board, highest XP first (ties: higher player id first)."""
    rows: list[Any] = await redis.zrevrange(key, 0, limit - 1, withscores=True)
    return [(m.decode() if isinstance(m, bytes) else str(m), int(s)) for m, s in rows]


async def standing(redis: Redis, key: str, player_id: str) -> tuple[int, int] | None:
    """``(rank from 1, xp)`` of a player on a board, or None when not on it."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrevrank(key, player_id)
        pipe.zscore(key, player_id)
        found: list[Any] = await pipe.execute()
    rank, score = found
    return None if rank is None else (int(rank) + 1, int(score))


async def ahead_of(redis: Redis, key: str, player_id: str, xp: int, others: list[str]) -> int:
    """How many of ``others`` rank above ``player_id`` (who has ``xp``) on a board: more XP,
    or as much and a higher id (the order of :func:`top`)."""
    ahead = 0
    for i in range(0, len(others), 1000):
        chunk = others[i : i + 1000]
        found: list[Any] = await redis.zmscore(key, chunk)
        for other, score in zip(chunk, found, strict=True):
            if score is not None and (int(score) > xp or (int(score) == xp and other > player_id)):
                ahead += 1
    return ahead
