"""Live notification streams (Server-Sent Events) of one API process.

The table is the truth; NATS only says when to look. The process keeps one core NATS
subscription per territory that has open streams (``oh.<territory>.notification.created``, the
event :func:`services.notifications.service.notify` emits) and wakes the streams of the player a
notification is for; a woken stream reads its rows after the last id it sent. Every heartbeat
it reads them too, so a stream still delivers (late) while NATS or the relay is down.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog
from litestar.response import ServerSentEventMessage

from core.errors import AppError
from core.events.envelope import subject_for
from core.routing import Router, Territory
from core.settings import Settings
from services.notifications.service import after, latest_id

log = structlog.get_logger(__name__)
BATCH = 100
RETRY_MS = 3000  # how long a disconnected EventSource waits before it reconnects


class Hub:
    def __init__(self) -> None:
        self._streams: dict[str, dict[uuid.UUID, set[asyncio.Event]]] = {}
        self._subscriptions: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def listen(self, nats: Any, territory: str, player_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """An event set whenever a notification for ``player_id`` in ``territory`` is announced."""
        wake = asyncio.Event()
        self._streams.setdefault(territory, {}).setdefault(player_id, set()).add(wake)
        try:
            await self._subscribe(nats, territory)
            yield wake
        finally:
            players = self._streams.get(territory, {})
            players.get(player_id, set()).discard(wake)
            if not players.get(player_id):
                players.pop(player_id, None)
            if not players:
                self._streams.pop(territory, None)
                await self._unsubscribe(territory)

    async def _subscribe(self, nats: Any, territory: str) -> None:
        async with self._lock:
            if territory in self._subscriptions or nats is None or not nats.is_connected:
                return

            async def on_message(msg: Any) -> None:
                self._wake(territory, msg.data)

            try:
                subject = subject_for(territory, "notification.created")
                self._subscriptions[territory] = await nats.subscribe(subject, cb=on_message)
            except Exception as exc:  # NATS away: streams fall back to reading at each heartbeat
                log.warning("notification subscription failed", territory=territory, error=str(exc))

    async def _unsubscribe(self, territory: str) -> None:
        async with self._lock:
            if territory in self._streams:  # a stream opened meanwhile
                return
            sub = self._subscriptions.pop(territory, None)
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception as exc:
                    log.debug("notification unsubscribe failed", territory=territory, error=str(exc))

    def _wake(self, territory: str, raw: bytes) -> None:
        try:
            player_id = uuid.UUID(json.loads(raw)["data"]["player_id"])
        except (ValueError, KeyError, TypeError):
            return
        for wake in self._streams.get(territory, {}).get(player_id, ()):
            wake.set()


def _comment(text: str) -> ServerSentEventMessage:
    # No data line at all: an empty "data:" would make browsers dispatch an empty message.
    return ServerSentEventMessage(data=None, comment=text)


def hub_of(state: Any) -> Hub:
    hub = state.get("notification_hub")
    if hub is None:
        hub = state["notification_hub"] = Hub()
    return hub  # type: ignore[no-any-return]


class Streams:
    """Live streams of one API process. A stream lasts long, so it does not hold a database
    connection: it reads the territory each time it is woken (one short read each)."""

    def __init__(self, router: Router, hub: Hub, nats: Any, settings: Settings) -> None:
        self.router, self.hub, self.nats, self.settings = router, hub, nats, settings

    def open(
        self, territory: Territory, player_id: uuid.UUID, last_event_id: int | None
    ) -> AsyncIterator[ServerSentEventMessage]:
        return stream(
            self.router, territory, player_id, last_event_id, hub=self.hub, nats=self.nats, settings=self.settings
        )


async def stream(
    router: Router,
    territory: Territory,
    player_id: uuid.UUID,
    last_event_id: int | None,
    *,
    hub: Hub,
    nats: Any,
    settings: Settings,
) -> AsyncIterator[ServerSentEventMessage]:
    """The player's notifications as SSE messages: those after ``last_event_id`` (none of the
    past without it), then each new one as it is stored; a comment every heartbeat. Ends after
    ``notification_stream_seconds`` (about an access token's life): the client reconnects with
    a fresh token and ``Last-Event-ID``."""
    ends = time.monotonic() + settings.notifications.stream_seconds
    async with hub.listen(nats, territory.code, player_id) as wake:
        try:
            if last_event_id is None:
                async with router.read(territory) as conn:
                    last_event_id = await latest_id(conn, player_id)
            yield ServerSentEventMessage(data=None, comment="connected", retry=RETRY_MS)
            last = last_event_id
            while True:
                wake.clear()
                async with router.read(territory) as conn:
                    found = await after(conn, player_id, last, BATCH)
                for n in found:
                    last = n.id
                    yield ServerSentEventMessage(data=msgspec.json.encode(n).decode(), event="notification", id=n.id)
                if len(found) == BATCH:
                    continue
                left = ends - time.monotonic()
                if left <= 0:
                    yield _comment("stream ends; reconnect with Last-Event-ID")
                    return
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(settings.notifications.heartbeat_seconds, left))
                except TimeoutError:
                    yield _comment("heartbeat")
        except AppError as exc:  # the territory's database went away: the client retries later
            yield _comment(f"unavailable: {exc.detail}")
