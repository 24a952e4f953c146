"""Record territory events in the activity feed (exactly once, through the inbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.consumers import Consumer
from core.events.envelope import Event
from services.activity.models import activity


async def record(conn: AsyncConnection, event: Event) -> None:
    await conn.execute(
        activity.insert().values(
            event_id=event.id,
            type=event.type,
            occurred_at=datetime.fromisoformat(event.occurred_at),
            data=event.data,
        )
    )


CONSUMERS = [Consumer(name="activity-zones", subject="oh.*.zone.>", handle=record)]
