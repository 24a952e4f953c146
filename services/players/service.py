"""Player rows: created at login in the home territory, or on first action in another one."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.players.models import players


async def ensure_player(conn: AsyncConnection, user_id: uuid.UUID, display_name: str | None = None) -> None:
    """Make sure the person has a player in this territory (a no-op when they already do)."""
    name = display_name or f"player-{str(user_id)[:8]}"
    await conn.execute(insert(players).values(id=user_id, display_name=name).on_conflict_do_nothing())
