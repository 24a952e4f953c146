"""``oneheart worker``: the outbox relay and the event consumers in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from core.events.bus import connect, ensure_stream
from core.events.consumers import parse_registry_event, run_consumers
from core.events.relay import Relay
from core.logging import configure_logging
from core.settings import Settings
from node import domains
from territories.registry import open_router

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, *, relay: bool = True, consumer_names: list[str] | None = None) -> None:
    configure_logging(settings.log.level, settings.log.as_json)
    available = {c.name: c for c in domains.consumers()}
    chosen = list(available.values()) if consumer_names is None else []
    for name in consumer_names or []:
        if name not in available:
            raise ValueError(f"unknown consumer {name!r}; choose from {', '.join(sorted(available))}")
        chosen.append(available[name])

    router = open_router(settings)
    nc, js = await connect(settings, "worker")
    await ensure_stream(js, settings)

    async def on_registry(msg: object) -> None:
        router.invalidate(parse_registry_event(msg.data))  # type: ignore[attr-defined]

    await nc.subscribe("oh.global.territory.>", cb=on_registry)
    tasks = []
    if relay:
        tasks.append(asyncio.create_task(Relay(router, js, settings).run(), name="relay"))
    if chosen:
        tasks.append(asyncio.create_task(run_consumers(router, js, chosen, settings), name="consumers"))
    if settings.ledger.checkpoint_interval > 0:
        from services.ledger.audit import run_checkpoints

        tasks.append(asyncio.create_task(run_checkpoints(router, settings), name="ledger-checkpoints"))
    log.info("worker started", relay=relay, consumers=[c.name for c in chosen])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in [waiter, *tasks]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await nc.close()
        await router.close()
        log.info("worker stopped")
