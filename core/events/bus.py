"""The NATS connection and the one JetStream stream that carries every event."""

from __future__ import annotations

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from core.settings import Settings


async def connect(settings: Settings, name: str) -> tuple[Client, JetStreamContext]:
    nc = await nats.connect(
        settings.events.nats_url,
        name=f"oneheart-{name}",
        connect_timeout=3,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
    )
    return nc, nc.jetstream(timeout=5)


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    config = StreamConfig(
        name=settings.events.stream_name,
        subjects=["oh.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=settings.events.stream_duplicate_window,
    )
    try:
        await js.stream_info(settings.events.stream_name)
    except NotFoundError:
        await js.add_stream(config)
