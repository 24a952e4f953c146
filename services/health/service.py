"""Readiness: each database server (the registry's and every registered one), NATS, Redis and
IPFS, each with its latency. :class:`Probe` is what ``GET /ready`` is given: it holds the
process's router and clients and checks them all in parallel, each within a time limit."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.routing import Router
from services.health.dto import Check, Readiness

TIMEOUT = 2.0  # seconds per check


async def _timed(name: str, probe: Callable[[], Awaitable[Any]]) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), TIMEOUT)
        return Check(name, True, round((time.perf_counter() - started) * 1000, 2))
    except Exception as exc:
        return Check(name, False, round((time.perf_counter() - started) * 1000, 2), type(exc).__name__)


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


@dataclass(frozen=True, slots=True)
class Probe:
    """The backing services of this process (``app.state``'s router, NATS, Redis, evidence store)."""

    router: Router
    nats: Any  # nats.aio.client.Client | None
    redis: Any  # redis.asyncio.Redis
    evidence: Any  # core.evidence.EvidenceStore

    async def _nats(self) -> None:
        if self.nats is None or not self.nats.is_connected:
            raise ConnectionError("not connected")
        await self.nats.flush(timeout=TIMEOUT)

    async def _ipfs(self) -> None:
        if not await self.evidence.ready():
            raise ConnectionError("no answer")

    async def readiness(self) -> Readiness:
        engines = {"registry": self.router.registry, **await self.router.server_engines()}
        probes = [_timed(f"postgres:{alias}", functools.partial(_select_one, e)) for alias, e in engines.items()]
        probes += [_timed("nats", self._nats), _timed("redis", self.redis.ping), _timed("ipfs", self._ipfs)]
        checks = list(await asyncio.gather(*probes))
        return Readiness("ready" if all(c.ok for c in checks) else "degraded", checks)
