"""Zones: create one (emits ``zone.created``), list a territory's zones."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import row_to, rows_to
from core.errors import NotFound
from core.events.outbox import emit
from core.pagination import decode_time_cursor, time_cursor
from services.zones.dto import Zone, ZoneIn
from services.zones.models import zones


def _zone(row: Any) -> Zone:
    return row_to(Zone, row)


async def create_zone(conn: AsyncConnection, data: ZoneIn) -> Zone:
    row = (
        await conn.execute(
            zones.insert()
            .values(id=uuid.uuid4(), name=data.name.strip(), lat=data.lat, lng=data.lng, radius_m=data.radius_m)
            .returning(zones)
        )
    ).one()
    zone = _zone(row)
    await emit(
        conn,
        "zone.created",
        {
            "zone_id": str(zone.id),
            "name": zone.name,
            "lat": zone.lat,
            "lng": zone.lng,
            "radius_m": zone.radius_m,
        },
    )
    return zone


_PAGE = sa.select(zones).order_by(zones.c.created_at, zones.c.id)


async def list_zones(conn: AsyncConnection, *, limit: int, cursor: str | None) -> tuple[list[Zone], str | None]:
    query = _PAGE.limit(limit + 1)
    if cursor:
        key = decode_time_cursor(cursor)
        query = query.where(sa.tuple_(zones.c.created_at, zones.c.id) > key)
    rows = rows_to(Zone, await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (time_cursor(rows[-1].created_at, rows[-1].id) if more else None)


async def get_zone(conn: AsyncConnection, zone_id: uuid.UUID) -> Zone:
    row = (await conn.execute(sa.select(zones).where(zones.c.id == zone_id))).first()
    if row is None:
        raise NotFound(f"zone {zone_id} does not exist in this territory")
    return _zone(row)
