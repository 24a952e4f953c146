"""Player rows: created at login in the home territory, or on first action in another one."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import NotFound
from core.routing import territory_of
from services.players.dto import Me
from services.players.models import players


async def ensure_player(conn: AsyncConnection, user_id: uuid.UUID, display_name: str | None = None) -> None:
    """Make sure the person has a player in this territory (a no-op when they already do)."""
    name = display_name or f"player-{str(user_id)[:8]}"
    await conn.execute(insert(players).values(id=user_id, display_name=name).on_conflict_do_nothing())


async def me(conn: AsyncConnection, identity: Identity) -> Me:
    """The caller's player in the connection's territory; 404 when they have none there yet."""
    territory = territory_of(conn)
    row = (await conn.execute(sa.select(players).where(players.c.id == identity.user_id))).first()
    if row is None:
        raise NotFound(f"you have no player in territory {territory!r} yet")
    m = row._mapping
    return Me(
        id=m["id"],
        territory=territory,
        home_territory=identity.home,
        display_name=m["display_name"],
        level=m["level"],
        xp=m["xp"],
        roles=identity.roles,
        joined_at=m["created_at"],
    )
