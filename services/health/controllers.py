"""Liveness, readiness (each database server, NATS, Redis, IPFS, with latency)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from core.routing import Router


class Check(msgspec.Struct):
    name: str
    ok: bool
    ms: float
    error: str | None = None


class Readiness(msgspec.Struct):
    status: str
    checks: list[Check]


class Liveness(msgspec.Struct):
    status: str


async def _timed(name: str, probe: Callable[[], Awaitable[Any]]) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), 2.0)
        return Check(name, True, round((time.perf_counter() - started) * 1000, 2))
    except Exception as exc:
        return Check(name, False, round((time.perf_counter() - started) * 1000, 2), type(exc).__name__)


class HealthController(Controller):
    tags = ["operations"]
    include_in_schema = True
    opt = {"rate_group": None}

    @get("/health", summary="Liveness")
    async def health(self) -> Liveness:
        return Liveness("ok")

    @get(
        "/ready",
        summary="Readiness of every backing service",
        responses={503: ResponseSpec(data_container=Readiness, description="A backing service is down")},
    )
    async def ready(self, request: Request[Any, Any, Any], router: NamedDependency[Router]) -> Response[Readiness]:
        state = request.app.state

        async def select_one(engine: Any) -> None:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

        async def nats_rtt() -> None:
            if state.nats is None or not state.nats.is_connected:
                raise ConnectionError("not connected")
            await state.nats.flush(timeout=2)

        async def ipfs_version() -> None:
            if not await state.evidence.ready():
                raise ConnectionError("no answer")

        servers = await router.server_engines()
        engines = {"registry": router.registry, **servers}
        probes = [
            _timed(f"postgres:{alias}", functools.partial(select_one, engine)) for alias, engine in engines.items()
        ]
        probes += [_timed("nats", nats_rtt), _timed("redis", state.redis.ping), _timed("ipfs", ipfs_version)]
        checks = list(await asyncio.gather(*probes))
        ok = all(c.ok for c in checks)
        return Response(Readiness("ready" if ok else "degraded", checks), status_code=200 if ok else 503)
