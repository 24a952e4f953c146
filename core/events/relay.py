"""The outbox relay: publishes committed outbox rows to JetStream, then marks them.

Woken by NOTIFY at commit (one LISTEN connection per database server) and by a periodic
sweep that also catches what was written while no relay ran. Rows are claimed with
``FOR UPDATE SKIP LOCKED`` so several relays can run; ``Nats-Msg-Id`` is the event id, so a
row published twice (a crash between publish and mark) is dropped by the stream's
duplicate window, and past it by the consumers' inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter

from core.codes import GLOBAL
from core.events.outbox import CHANNEL
from core.events.tables import outbox
from core.routing import Router
from core.settings import Settings

log = structlog.get_logger(__name__)
PUBLISHED = Counter("oh_events_published_total", "Outbox events published to JetStream", ["territory"])


class Relay:
    def __init__(self, router: Router, js: JetStreamContext, settings: Settings) -> None:
        self.router, self.js, self.settings = router, js, settings
        self._wake: asyncio.Queue[str] = asyncio.Queue()
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        drainer = asyncio.create_task(self._drain_woken())
        try:
            while True:
                try:
                    await self.sweep()
                except Exception as exc:  # a passing database error must not stop the relay
                    log.warning("outbox sweep failed; retrying", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.settings.events.relay_sweep_interval)
        finally:
            drainer.cancel()
            for task in self._listeners.values():
                task.cancel()

    async def sweep(self) -> None:
        """Start listeners for new servers and drain every territory with pending rows."""
        servers = await self._servers()
        for alias, dsn in servers.items():
            if alias not in self._listeners or self._listeners[alias].done():
                self._listeners[alias] = asyncio.create_task(self._listen(alias, dsn))
        for code in await self.pending():
            try:
                await self.drain(code)
            except Exception as exc:  # one territory's trouble must not hold up the others
                log.warning("outbox drain failed", territory=code, error=f"{type(exc).__name__}: {exc}")

    async def pending(self) -> list[str]:
        """Codes (and ``global``) with unpublished outbox rows, a few queries per server."""
        found: list[str] = []
        async with self.router.registry_read() as conn:
            if (await conn.execute(sa.select(sa.exists().where(outbox.c.published_at.is_(None))))).scalar():
                found.append(GLOBAL)
        waiting = await self.router.across("outbox", "EXISTS (SELECT 1 FROM {table} WHERE published_at IS NULL)")
        for alias, error in waiting.errors.items():  # one server down must not stop the others
            log.warning("outbox sweep failed", server=alias, error=error)
        return found + sorted(code for code, pending in waiting.values.items() if pending)

    async def drain(self, code: str) -> int:
        """Publish every pending row of one territory; returns how many were published."""
        lock = self._locks.setdefault(code, asyncio.Lock())
        total = 0
        async with lock:
            while True:
                opened = (
                    self.router.registry_transaction()
                    if code == GLOBAL
                    else self.router.transaction(await self.router.lookup(code))
                )
                async with opened as conn:
                    rows = (
                        await conn.execute(
                            sa.select(outbox.c.id, outbox.c.subject, outbox.c.envelope)
                            .where(outbox.c.published_at.is_(None))
                            .order_by(outbox.c.created_at, outbox.c.id)
                            .limit(self.settings.events.relay_batch)
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
                    if not rows:
                        return total
                    await self._publish(rows)
                    await conn.execute(
                        outbox.update().where(outbox.c.id.in_([r.id for r in rows])).values(published_at=sa.func.now())
                    )
                total += len(rows)
                PUBLISHED.labels(code).inc(len(rows))
                if len(rows) < self.settings.events.relay_batch:
                    return total

    async def _publish(self, rows: Sequence[Any]) -> None:
        await asyncio.gather(
            *(
                self.js.publish(
                    r.subject,
                    json.dumps(r.envelope, separators=(",", ":")).encode(),
                    stream=self.settings.events.stream_name,
                    headers={"Nats-Msg-Id": str(r.id)},
                )
                for r in rows
            )
        )

    async def _drain_woken(self) -> None:
        while True:
            code = await self._wake.get()
            try:
                await self.drain(code)
            except Exception as exc:  # retried by the next NOTIFY or sweep
                log.warning("outbox drain failed", territory=code, error=str(exc))

    async def _servers(self) -> dict[str, str]:
        servers = await self.router.servers()
        if self.settings.registry.dsn not in servers.values():
            servers["registry"] = self.settings.registry.dsn
        return servers

    async def _listen(self, alias: str, dsn: str) -> None:
        """LISTEN on one server; reconnects while the server is away."""

        def on_notify(_c: object, _pid: int, _channel: str, payload: str) -> None:
            self._wake.put_nowait(payload)

        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn, timeout=self.settings.db.connect_timeout)
                await conn.add_listener(CHANNEL, on_notify)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox listener lost", server=alias, error=str(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(1)
