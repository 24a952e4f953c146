"""``oneheart gateway``: the Matrix gateway process.

It serves the application-service endpoint (transactions pushed by each territory's
homeserver: votes, link codes) and runs the consumers that post proofs and outcomes
(``federation.posting``). Several territories, each with its own homeserver, share one
gateway; a homeserver's registration points at ``<gateway>/territories/<code>``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
import uvicorn

from core.events.bus import connect, ensure_stream
from core.events.consumers import parse_registry_event, run_consumers
from core.evidence import EvidenceStore
from core.logging import configure_logging
from core.settings import Settings
from federation import appservice, posting
from federation.context import Gateway, install
from territories.registry import open_router

log = structlog.get_logger(__name__)


async def run_gateway(settings: Settings, host: str, port: int) -> None:
    configure_logging(settings.log.level, settings.log.as_json)
    router = open_router(settings)
    gateway = Gateway(settings, router, EvidenceStore(settings))
    install(gateway)
    nc, js = await connect(settings, "gateway")
    await ensure_stream(js, settings)

    async def on_registry(msg: object) -> None:
        router.invalidate(parse_registry_event(msg.data))  # type: ignore[attr-defined]

    await nc.subscribe("oh.global.territory.>", cb=on_registry)
    server = uvicorn.Server(
        uvicorn.Config(
            appservice.create_app(), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    consumers = asyncio.create_task(run_consumers(router, js, posting.CONSUMERS, settings), name="gateway-consumers")
    log.info("gateway started", host=host, port=port, consumers=[c.name for c in posting.CONSUMERS])
    try:
        # uvicorn handles SIGINT/SIGTERM: serve() returns and everything else stops with it.
        serving = asyncio.create_task(server.serve(), name="appservice")
        done, _ = await asyncio.wait([serving, consumers], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in (consumers,):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await nc.close()
        await gateway.close()
        await router.close()
        log.info("gateway stopped")
