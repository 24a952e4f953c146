"""Durable JetStream consumers whose handlers run once per event.

A handler runs inside the territory's scoped transaction together with the insert of
``(consumer, event_id)`` into that schema's inbox: a redelivered event finds its id there and
is acknowledged without running again. A handler that raises rolls back and the message is
redelivered with a growing delay, so a failing event is retried, never lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jsonschema
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.envelope import Event
from core.events.tables import inbox
from core.routing import Router, UnknownTerritory
from core.settings import Settings

log = structlog.get_logger(__name__)
HANDLED = Counter("oh_events_handled_total", "Events handled by consumers", ["consumer", "outcome"])

Handler = Callable[[AsyncConnection, Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str  # durable consumer name, also the inbox key
    subject: str  # filter, e.g. "oh.*.zone.created"
    handle: Handler
    max_deliveries: int | None = None  # with give_up: failed runs before giving up
    give_up: Handler | None = None
    concurrency: int = 1  # events handled at once (>1 only when their order does not matter)


async def _run_once(router: Router, consumer: Consumer, event: Event, handler: Handler) -> bool:
    """Run ``handler`` unless the inbox says this consumer already handled the event."""
    async with router.transaction(await router.lookup(event.territory)) as conn:
        claimed = (
            await conn.execute(
                insert(inbox)
                .values(consumer=consumer.name, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(inbox.c.event_id)
            )
        ).first()
        if claimed is not None:
            await handler(conn, event)
    return claimed is not None


def backoff(deliveries: int, cap: float) -> float:
    return float(min(cap, 2 ** max(0, deliveries - 1)))


async def handle_message(router: Router, consumer: Consumer, msg: Msg, settings: Settings) -> str:
    """Handle one message and ack/nak/term it; returns the outcome."""
    try:
        event = Event.parse(msg.data)
    except (ValueError, KeyError, jsonschema.ValidationError) as exc:
        log.error("malformed event dropped", consumer=consumer.name, subject=msg.subject, error=str(exc))
        await msg.term()
        return "malformed"
    try:
        claimed = await _run_once(router, consumer, event, consumer.handle)
        await msg.ack()
        return "handled" if claimed else "duplicate"
    except UnknownTerritory as exc:
        log.error("event for unknown territory dropped", consumer=consumer.name, error=exc.detail)
        await msg.term()
        return "unknown_territory"
    except Exception as exc:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        if consumer.give_up is not None and consumer.max_deliveries and deliveries >= consumer.max_deliveries:
            return await _give_up(router, consumer, msg, event, deliveries, exc, settings)
        delay = backoff(deliveries, settings.events.consumer_max_backoff)
        log.warning(
            "event handler failed; will retry",
            consumer=consumer.name,
            event_id=str(event.id),
            territory=event.territory,
            deliveries=deliveries,
            retry_in=delay,
            error=f"{type(exc).__name__}: {exc}",
        )
        await msg.nak(delay=delay)
        return "failed"


async def _give_up(
    router: Router, consumer: Consumer, msg: Msg, event: Event, deliveries: int, exc: Exception, settings: Settings
) -> str:
    log.error(
        "event handler keeps failing; giving up on it",
        consumer=consumer.name,
        event_id=str(event.id),
        territory=event.territory,
        deliveries=deliveries,
        error=f"{type(exc).__name__}: {exc}",
    )
    assert consumer.give_up is not None
    try:
        await _run_once(router, consumer, event, consumer.give_up)
    except Exception as again:  # the fallback failed too (database down): keep the event
        log.warning("give-up handler failed; will retry", consumer=consumer.name, error=str(again))
        await msg.nak(delay=settings.events.consumer_max_backoff)
        return "failed"
    await msg.ack()
    return "gave_up"


async def run_consumer(router: Router, js: JetStreamContext, consumer: Consumer, settings: Settings) -> None:
    sub = await js.pull_subscribe(
        consumer.subject,
        durable=consumer.name,
        stream=settings.events.stream_name,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=settings.events.consumer_ack_wait,
            max_deliver=-1,
            max_ack_pending=1000,
        ),
    )
    # Events of a batch are independent (each runs in its own transaction with its own inbox
    # row), so up to ``concurrency`` run at once: one waits on I/O while another computes.
    gate = asyncio.Semaphore(consumer.concurrency)

    async def one(msg: Msg) -> None:
        async with gate:
            try:
                outcome = await handle_message(router, consumer, msg, settings)
            except Exception as exc:  # ack/nak lost in a reconnect: JetStream redelivers after ack_wait
                log.warning("event not acknowledged", consumer=consumer.name, error=f"{type(exc).__name__}: {exc}")
                outcome = "unacknowledged"
            HANDLED.labels(consumer.name, outcome).inc()

    log.info("consumer started", consumer=consumer.name, subject=consumer.subject, concurrency=consumer.concurrency)
    while True:
        try:
            msgs = await sub.fetch(settings.events.consumer_batch, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):  # nothing to fetch (nats-py raises either)
            continue
        except Exception as exc:  # NATS reconnecting, server restarting: wait and fetch again
            log.warning("consumer fetch failed; retrying", consumer=consumer.name, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1)
            continue
        await asyncio.gather(*(one(msg) for msg in msgs))


async def run_consumers(router: Router, js: JetStreamContext, consumers: list[Consumer], settings: Settings) -> None:
    await asyncio.gather(*(run_consumer(router, js, c, settings) for c in consumers))


def parse_registry_event(data: bytes) -> str | None:
    """The territory code a ``territory.*`` registry event is about, if any."""
    try:
        doc = json.loads(data)
        return str(doc["data"]["code"])
    except (ValueError, KeyError, TypeError):
        return None
