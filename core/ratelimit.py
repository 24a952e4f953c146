"""Rate limits in Redis: a fixed window per route group and caller, 429 with Retry-After.

Limits are settings of the form ``"<count>/<seconds>"``. The caller is the user id when the
request carries a valid token, else the client IP (the built-in provider's password form
counts failed attempts per account and IP instead: :func:`refuse_if_spent`, :func:`spend`).
A Redis outage lets requests through (logged): availability of the API matters more than a counter.
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


def _key(namespace: str, group: str, caller: str, window: int) -> str:
    """The one place this module names its Redis keys (under the node's prefix, core.redis)."""
    return f"{namespace}:rl:{group}:{caller}:{window}"


def _window(spec: str, now: float | None) -> tuple[int, int, int, float]:
    count, seconds = parse_limit(spec)
    now = time.time() if now is None else now
    return count, seconds, int(now // seconds), now


def _refusal(group: str, count: int, seconds: int, window: int, now: float) -> RateLimited:
    retry = max(1, int((window + 1) * seconds - now) + 1)
    return RateLimited(
        f"too many requests for {group}: {count} per {seconds}s; retry in {retry}s",
        headers={"Retry-After": str(retry)},
    )


async def _incr(redis: Redis, key: str, seconds: int) -> int:
    used = await redis.incr(key)  # one round trip on the hot path
    if used == 1:  # first hit of this window: let the counter expire with it
        await redis.expire(key, seconds + 1)
    return int(used)


async def check(redis: Redis, namespace: str, group: str, caller: str, spec: str, *, now: float | None = None) -> None:
    """Count one request of ``caller`` in ``group``; raise :class:`RateLimited` past the limit."""
    count, seconds, window, now = _window(spec, now)
    try:
        used = await _incr(redis, _key(namespace, group, caller, window), seconds)
    except RedisError as exc:
        log.warning("rate limiter unavailable; request allowed", group=group, error=str(exc))
        return
    if used > count:
        raise _refusal(group, count, seconds, window, now)


async def refuse_if_spent(
    redis: Redis, namespace: str, group: str, caller: str, spec: str, *, now: float | None = None
) -> None:
    """Raise :class:`RateLimited` if ``caller`` already spent ``group``'s allowance in this
    window (counting nothing): for limits on failures, counted with :func:`spend`."""
    count, seconds, window, now = _window(spec, now)
    try:
        used = await redis.get(_key(namespace, group, caller, window))
    except RedisError as exc:
        log.warning("rate limiter unavailable; request allowed", group=group, error=str(exc))
        return
    if used is not None and int(used) >= count:
        raise _refusal(group, count, seconds, window, now)


async def spend(redis: Redis, namespace: str, group: str, caller: str, spec: str, *, now: float | None = None) -> None:
    """Count one failure of ``caller`` against ``group``'s allowance (see :func:`refuse_if_spent`)."""
    _count, seconds, window, _now = _window(spec, now)
    try:
        await _incr(redis, _key(namespace, group, caller, window), seconds)
    except RedisError as exc:
        log.warning("rate limiter unavailable; failure not counted", group=group, error=str(exc))
