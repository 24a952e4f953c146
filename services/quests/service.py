"""Quests (what a player can do in a zone) and assignments (a player's run at a quest)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import row_to
from core.errors import Conflict, InvalidInput, NotFound
from core.geo import check_point, distance_sql
from core.pagination import decode_cursor, decode_time_cursor, encode_cursor, time_cursor
from services.players.service import ensure_player
from services.quests.dto import Assignment, Quest, QuestIn
from services.quests.models import OPEN, assignments, quests
from services.zones.models import zones


def distance_m(lat: float, lng: float) -> sa.ColumnElement[float]:
    """Great-circle distance in metres from a point to each zone's centre, in SQL (never raises
    for a stored finite value; see :func:`core.geo.distance_sql`)."""
    return distance_sql(zones.c.lat, zones.c.lng, lat, lng)


def _mine(player_id: uuid.UUID) -> tuple[sa.ScalarSelect[Any], sa.ScalarSelect[Any]]:
    latest = (
        sa.select(assignments.c.status)
        .where(assignments.c.quest_id == quests.c.id, assignments.c.player_id == player_id)
        .order_by(assignments.c.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    done = (
        sa.select(sa.func.count())
        .where(
            assignments.c.quest_id == quests.c.id,
            assignments.c.player_id == player_id,
            assignments.c.status == "completed",
        )
        .scalar_subquery()
    )
    return latest, done


def _quest(row: Any, distance: float | None = None) -> Quest:
    m = row._mapping
    return row_to(Quest, row, my_status=m["my_status"] or "available", distance_m=distance)


async def create_quest(conn: AsyncConnection, data: QuestIn, created_by: uuid.UUID) -> Quest:
    if data.starts_at and data.ends_at and data.ends_at <= data.starts_at:
        raise InvalidInput("ends_at must be after starts_at")
    for name, at in (("starts_at", data.starts_at), ("ends_at", data.ends_at)):
        if at is not None and at.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-05-01T09:00:00Z)")
    zone = (await conn.execute(sa.select(zones.c.id).where(zones.c.id == data.zone_id))).first()
    if zone is None:
        raise InvalidInput(f"zone {data.zone_id} does not exist in this territory")
    quest_id = uuid.uuid4()
    await conn.execute(
        quests.insert().values(
            id=quest_id,
            zone_id=data.zone_id,
            title=data.title.strip(),
            description=data.description,
            type=data.type,
            category=data.category,
            base_xp=data.base_xp,
            base_tokens=data.base_tokens,
            difficulty=data.difficulty,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            max_completions=data.max_completions,
            created_by=created_by,
        )
    )
    return await get_quest(conn, quest_id, created_by)


async def get_quest(conn: AsyncConnection, quest_id: uuid.UUID, player_id: uuid.UUID) -> Quest:
    latest, done = _mine(player_id)
    row = (
        await conn.execute(
            sa.select(quests, latest.label("my_status"), done.label("my_completions")).where(quests.c.id == quest_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"quest {quest_id} does not exist in this territory")
    return _quest(row)


@dataclass(frozen=True, slots=True)
class QuestFilter:
    zone_id: uuid.UUID | None = None
    near: tuple[float, float, float] | None = None  # lat, lng, radius in metres
    type: str | None = None
    category: str | None = None
    open_only: bool = True


def quest_filter(
    *,
    zone_id: uuid.UUID | None = None,
    lat: float | None = None,
    lng: float | None = None,
    radius_km: float = 25.0,
    type: str | None = None,
    category: str | None = None,
    include_closed: bool = False,
) -> QuestFilter:
    """The filter of a quest search as a caller gives it: both of ``lat``/``lng`` or neither
    (kept to 7 decimals), a radius of 1 m to 500 km (kept to the metre); 400 otherwise."""
    if (lat is None) != (lng is None):
        raise InvalidInput("give both lat and lng, or neither")
    if not (math.isfinite(radius_km) and 0.001 <= radius_km <= 500):
        raise InvalidInput("radius_km must be between 0.001 and 500")
    near = None
    if lat is not None and lng is not None:
        near = (*check_point(lat, lng), round(radius_km * 1000, 0))
    return QuestFilter(zone_id, near, type, category, not include_closed)


async def categories(conn: AsyncConnection) -> list[str]:
    """The categories the territory's quests use, in alphabetical order."""
    return list((await conn.execute(sa.select(quests.c.category).distinct().order_by(quests.c.category))).scalars())


async def list_quests(
    conn: AsyncConnection, player_id: uuid.UUID, where: QuestFilter, *, limit: int, cursor: str | None
) -> tuple[list[Quest], str | None]:
    """Quests by distance from ``where.near`` (nearest first), else newest last, keyset-paginated."""
    latest, done = _mine(player_id)
    columns: list[Any] = [quests, latest.label("my_status"), done.label("my_completions")]
    query = sa.select(*columns).select_from(quests.join(zones, zones.c.id == quests.c.zone_id))
    if where.zone_id is not None:
        query = query.where(quests.c.zone_id == where.zone_id)
    if where.type is not None:
        query = query.where(quests.c.type == where.type)
    if where.category is not None:
        query = query.where(quests.c.category == where.category)
    if where.open_only:
        now = sa.func.now()
        query = query.where(
            sa.or_(quests.c.starts_at.is_(None), quests.c.starts_at <= now),
            sa.or_(quests.c.ends_at.is_(None), quests.c.ends_at > now),
        )
    if where.near is not None:
        lat, lng, radius = where.near
        dist = distance_m(lat, lng)
        # A quest is near when the point is within ``radius`` of its zone's edge.
        query = query.add_columns(dist.label("distance")).where(dist - zones.c.radius_m <= radius)
        order: tuple[Any, Any] = (dist, quests.c.id)
    else:
        order = (quests.c.created_at, quests.c.id)
    if cursor:
        first, last_id = decode_cursor(cursor, 2)
        try:
            key: Any = float(first) if where.near is not None else datetime.fromisoformat(first)
            if isinstance(key, float) and not math.isfinite(key):
                raise ValueError(first)
            query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(key), sa.literal(uuid.UUID(last_id))))
        except ValueError:
            raise InvalidInput("malformed cursor") from None
    rows = list(await conn.execute(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_quest(r, r.distance if where.near is not None else None) for r in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        first_key = repr(float(last.distance)) if where.near is not None else last.created_at.isoformat()
        next_cursor = encode_cursor(first_key, str(last.id))
    return items, next_cursor


async def start_quest(conn: AsyncConnection, quest_id: uuid.UUID, player_id: uuid.UUID) -> tuple[Assignment, bool]:
    """Start (or return the already open) assignment; ``True`` when it was created now. The
    player gets a player row in this territory if it has none yet."""
    await ensure_player(conn, player_id)
    quest = (await conn.execute(sa.select(quests).where(quests.c.id == quest_id).with_for_update())).first()
    if quest is None:
        raise NotFound(f"quest {quest_id} does not exist in this territory")
    now = datetime.now(UTC)
    if quest.starts_at is not None and now < quest.starts_at:
        raise Conflict(f"quest opens at {quest.starts_at.isoformat()}")
    if quest.ends_at is not None and now >= quest.ends_at:
        raise Conflict(f"quest closed at {quest.ends_at.isoformat()}")
    mine = sa.and_(assignments.c.quest_id == quest_id, assignments.c.player_id == player_id)
    open_row = (await conn.execute(sa.select(assignments.c.id).where(mine, assignments.c.status.in_(OPEN)))).first()
    if open_row is not None:
        return await get_assignment(conn, open_row.id), False
    completed = (
        await conn.execute(sa.select(sa.func.count()).where(mine, assignments.c.status == "completed"))
    ).scalar_one()
    if completed >= quest.max_completions:
        raise Conflict(f"you have completed this quest the maximum number of times ({quest.max_completions})")
    assignment_id = uuid.uuid4()
    await conn.execute(
        assignments.insert().values(id=assignment_id, quest_id=quest_id, player_id=player_id, status="active")
    )
    return await get_assignment(conn, assignment_id), True


_ASSIGNMENT = sa.select(
    assignments.c.id,
    assignments.c.quest_id,
    quests.c.title.label("quest_title"),
    assignments.c.status,
    assignments.c.started_at,
    assignments.c.submitted_at,
    assignments.c.finished_at,
).select_from(assignments.join(quests, quests.c.id == assignments.c.quest_id))


def _assignment(row: Any) -> Assignment:
    return row_to(Assignment, row)


async def get_assignment(conn: AsyncConnection, assignment_id: uuid.UUID) -> Assignment:
    row = (await conn.execute(_ASSIGNMENT.where(assignments.c.id == assignment_id))).one()
    return _assignment(row)


async def history(
    conn: AsyncConnection,
    player_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    quest_id: uuid.UUID | None = None,
) -> tuple[list[Assignment], str | None]:
    """The player's assignments (of one quest when ``quest_id`` is given), newest first."""
    query = _ASSIGNMENT.where(assignments.c.player_id == player_id)
    if quest_id is not None:
        query = query.where(assignments.c.quest_id == quest_id)
    if cursor:
        key = decode_time_cursor(cursor)
        query = query.where(sa.tuple_(assignments.c.started_at, assignments.c.id) < key)
    rows = [
        _assignment(r)
        for r in await conn.execute(
            query.order_by(assignments.c.started_at.desc(), assignments.c.id.desc()).limit(limit + 1)
        )
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (time_cursor(rows[-1].started_at, rows[-1].id) if more else None)
