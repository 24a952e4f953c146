"""Write an event in the same transaction as the change it describes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.envelope import Event, new_event
from core.events.tables import outbox
from core.routing import territory_of

CHANNEL = "oh_outbox"


async def emit(conn: AsyncConnection, event_type: str, data: dict[str, Any]) -> Event:
    """Queue ``event_type`` for the connection's territory (or the registry's ``global``); it
    is published only if the transaction commits. The NOTIFY (also transactional) wakes the
    relay at commit."""
    territory = territory_of(conn)
    event = new_event(territory, event_type, data)
    await conn.execute(
        outbox.insert().values(id=event.id, type=event_type, subject=event.subject, envelope=event.to_json())
    )
    await conn.execute(sa.text("SELECT pg_notify(:channel, :territory)"), {"channel": CHANNEL, "territory": territory})
    return event
