"""Rate limits in Redis: a fixed window per route group and caller, 429 with Retry-After.

Limits are settings of the form ``"<count>/<seconds>"``. The caller is the user id when the
request carries a valid token, else the client IP. A Redis outage lets requests through
(logged): availability of the API matters more than a counter.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import AppError

log = structlog.get_logger(__name__)


class RateLimited(AppError):
    status, code = 429, "rate_limited"


def parse_limit(spec: str) -> tuple[int, int]:
    try:
        count, seconds = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"rate limit must look like '<count>/<seconds>', not {spec!r}") from None
    if count < 1 or seconds < 1:
        raise ValueError(f"rate limit {spec!r} must be positive")
    return count, seconds


async def check(redis: Redis, group: str, caller: str, spec: str, *, now: float | None = None) -> None:
    """Count one request of ``caller`` in ``group``; raise :class:`RateLimited` past the limit."""
    count, seconds = parse_limit(spec)
    now = time.time() if now is None else now
    window = int(now // seconds)
    key = f"oh:rl:{group}:{caller}:{window}"
    try:
        used = await redis.incr(key)  # one round trip on the hot path
        if used == 1:  # first hit of this window: let the counter expire with it
            await redis.expire(key, seconds + 1)
    except RedisError as exc:
        log.warning("rate limiter unavailable; request allowed", group=group, error=str(exc))
        return
    if int(used) > count:
        retry = max(1, int((window + 1) * seconds - now) + 1)
        raise RateLimited(
            f"too many requests for {group}: {count} per {seconds}s; retry in {retry}s",
            headers={"Retry-After": str(retry)},
        )
