"""Storing and reading a player's notifications.

:func:`notify` writes the row and a ``notification.created`` event in the caller's transaction;
API nodes wake the player's live streams on that event, and the streams read the row itself.
A player's notification ids are handed out in commit order (a per-player transaction lock is
taken before the id), so a stream that has seen id N has seen every earlier one.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import NotFound
from core.events.outbox import emit
from core.pagination import decode_int_cursor, encode_cursor
from services.notifications.dto import Notification, NotificationPage
from services.notifications.models import notifications

N = notifications
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended('oh-notify:' || :player, 0))")


_COLUMNS = (N.c.id, N.c.kind, N.c.title, N.c.body, N.c.data, N.c.created_at, N.c.read_at)


def _notification(row: Any) -> Notification:
    m = row._mapping
    return Notification(
        id=m["id"],
        kind=m["kind"],
        title=m["title"],
        body=m["body"],
        data=m["data"],
        created_at=m["created_at"],
        read_at=m["read_at"],
    )


async def hold(conn: AsyncConnection, player_id: uuid.UUID) -> None:
    """Take ``player_id``'s notification lock now, until commit (:func:`notify` takes it again,
    which costs nothing). A writer that locks a row a payout also locks (a proof) and then
    notifies takes it first, so both lock in the payout's order and never wait for each other."""
    await conn.execute(_LOCK, {"player": str(player_id)})


async def notify(
    conn: AsyncConnection,
    player_id: uuid.UUID,
    kind: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> int | None:
    """Store a notification for ``player_id``; its id, or None when ``key`` was already used
    for this player (the notification exists: replays do not repeat it).

    It takes the player's notification lock until commit: call it after anything else that
    locks (a ledger append, say), as payouts do, so two writers never wait for each other."""
    await conn.execute(_LOCK, {"player": str(player_id)})
    statement = insert(N).values(player_id=player_id, kind=kind, title=title, body=body, data=data or {}, key=key)
    if key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=[N.c.player_id, N.c.key], index_where=N.c.key.is_not(None)
        )
    notification_id = (await conn.execute(statement.returning(N.c.id))).scalar_one_or_none()
    if notification_id is not None:
        await emit(
            conn,
            "notification.created",
            {"notification_id": notification_id, "player_id": str(player_id), "kind": kind},
        )
    return notification_id


async def list_notifications(
    conn: AsyncConnection, player_id: uuid.UUID, *, unread_only: bool, limit: int, cursor: str | None
) -> NotificationPage:
    """Newest first, keyset-paginated on id."""
    query = sa.select(*_COLUMNS).where(N.c.player_id == player_id)
    if unread_only:
        query = query.where(N.c.read_at.is_(None))
    if cursor:
        query = query.where(N.c.id < decode_int_cursor(cursor))
    rows = (await conn.execute(query.order_by(N.c.id.desc()).limit(limit + 1))).all()
    items = [_notification(r) for r in rows[:limit]]
    unread = await unread_count(conn, player_id)
    return NotificationPage(items, encode_cursor(str(items[-1].id)) if len(rows) > limit else None, unread)


async def unread_count(conn: AsyncConnection, player_id: uuid.UUID) -> int:
    """How many of the player's notifications in this territory are unread."""
    found = await conn.execute(sa.select(sa.func.count()).where(N.c.player_id == player_id, N.c.read_at.is_(None)))
    return int(found.scalar_one())


async def after(conn: AsyncConnection, player_id: uuid.UUID, last_id: int, limit: int) -> list[Notification]:
    """The player's notifications after ``last_id``, oldest first (what a live stream sends next)."""
    query = sa.select(*_COLUMNS).where(N.c.player_id == player_id, N.c.id > last_id).order_by(N.c.id).limit(limit)
    return [_notification(r) for r in await conn.execute(query)]


async def latest_id(conn: AsyncConnection, player_id: uuid.UUID) -> int:
    found = await conn.execute(sa.select(sa.func.max(N.c.id)).where(N.c.player_id == player_id))
    return int(found.scalar_one() or 0)


async def mark_read(conn: AsyncConnection, player_id: uuid.UUID, notification_id: int) -> Notification | None:
    """Mark one of the player's notifications read (kept as first read); None if not theirs."""
    mine = sa.and_(N.c.id == notification_id, N.c.player_id == player_id)
    await conn.execute(N.update().where(mine, N.c.read_at.is_(None)).values(read_at=sa.func.now()))
    row = (await conn.execute(sa.select(*_COLUMNS).where(mine))).first()
    return _notification(row) if row else None


async def read_one(conn: AsyncConnection, player_id: uuid.UUID, notification_id: int) -> Notification:
    """Mark one of the player's notifications read; :class:`NotFound` when it is not theirs."""
    found = await mark_read(conn, player_id, notification_id)
    if found is None:
        raise NotFound(f"you have no notification {notification_id} in this territory")
    return found


async def mark_all_read(conn: AsyncConnection, player_id: uuid.UUID) -> int:
    done = await conn.execute(
        N.update().where(N.c.player_id == player_id, N.c.read_at.is_(None)).values(read_at=sa.func.now())
    )
    return int(done.rowcount)
