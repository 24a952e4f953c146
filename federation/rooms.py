"""A Matrix space per territory and a public, federatable room per zone, made on demand.

Rooms are recorded in the territory's ``matrix_rooms``; their aliases (``#oh_<code>`` for the
space, ``#oh_<code>_<zone slug>_<id>`` for a zone) make creation idempotent: a room made by an
attempt that crashed before recording it is found again through its alias.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.routing import Territory
from federation.matrix import Bot
from services.social.models import matrix_rooms

SPACE = "space"
HOW_TO = "React 👍 to agree or 👎 to disagree. Not linked yet? Get a code in the app and send !link CODE here."


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "zone"


async def _recorded(conn: AsyncConnection, key: str) -> str | None:
    return (await conn.execute(sa.select(matrix_rooms.c.room_id).where(matrix_rooms.c.key == key))).scalar_one_or_none()


async def _record(conn: AsyncConnection, key: str, kind: str, zone_id: Any, room_id: str, alias: str) -> None:
    await conn.execute(
        insert(matrix_rooms)
        .values(key=key, kind=kind, zone_id=zone_id, room_id=room_id, alias=alias)
        .on_conflict_do_nothing()
    )


async def space(conn: AsyncConnection, bot: Bot, territory: Territory) -> str:
    found = await _recorded(conn, SPACE)
    if found:
        return found
    localpart = f"oh_{territory.code}"
    room_id = await bot.create_room(
        alias_localpart=localpart,
        name=f"OneHeart {territory.name}",
        topic=f"Good deeds in {territory.name}: one room per zone. {HOW_TO}",
        space=True,
    )
    await _record(conn, SPACE, "space", None, room_id, f"#{localpart}:{bot.config.server_name}")
    return room_id


async def zone_room(conn: AsyncConnection, bot: Bot, territory: Territory, zone_id: uuid.UUID, name: str) -> str:
    """The zone's room, created and put in the territory's space if new."""
    found = await _recorded(conn, str(zone_id))
    if found:
        return found
    parent = await space(conn, bot, territory)
    server = bot.config.server_name
    localpart = f"oh_{territory.code}_{slug(name)}_{zone_id.hex[:8]}"
    room_id = await bot.create_room(
        alias_localpart=localpart,
        name=f"{name} · {territory.name}",
        topic=f"Proofs of good deeds in {name}. {HOW_TO}",
        initial_state=[
            {"type": "m.space.parent", "state_key": parent, "content": {"via": [server], "canonical": True}}
        ],
    )
    await bot.put_state(parent, "m.space.child", {"via": [server]}, state_key=room_id)
    await _record(conn, str(zone_id), "zone", zone_id, room_id, f"#{localpart}:{server}")
    return room_id
