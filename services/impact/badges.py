"""Badge definitions (``public.badge_definitions`` on every database server) and awarding.

The definitions are reference data shared by the territories of a server. A territory
transaction renders only schema-less tables into the territory's schema, so it reads
``public.badge_definitions`` of its own server; :func:`ensure_catalogue` creates that table and
loads :data:`services.impact.catalogue.BADGES` into it, once per server and process. The
server's role needs CREATE on the ``public`` schema for that (PostgreSQL 15 no longer grants
it to everyone); otherwise run ``oneheart impact sync-badges`` as the schema's owner (without
the grant it fails with :class:`CatalogueUnwritable`, naming the grant).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.errors import Unavailable
from core.routing import is_server_down
from services.impact.catalogue import BADGES
from services.impact.models import badge_definitions, payouts, player_badges

log = structlog.get_logger(__name__)
D, P, PB = badge_definitions, payouts, player_badges
Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Category = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,39}$")]
Positive = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class CountRule(msgspec.Struct, tag_field="kind", tag="count", forbid_unknown_fields=True):
    count: Positive
    status: Literal["approved", "validated", "auto_approved"] = "approved"
    category: Category | None = None
    within_days: Positive | None = None


class LevelRule(msgspec.Struct, tag_field="kind", tag="level", forbid_unknown_fields=True):
    level: Annotated[int, msgspec.Meta(ge=2, le=1000)]


class StreakRule(msgspec.Struct, tag_field="kind", tag="streak", forbid_unknown_fields=True):
    days: Annotated[int, msgspec.Meta(ge=2, le=366)]


Rule = CountRule | LevelRule | StreakRule


class BadgeDefinition(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    description: Annotated[str, msgspec.Meta(max_length=500)]
    rule: Rule
    valid_days: Positive | None = None
    active: bool = True


def catalogue() -> list[BadgeDefinition]:
    return msgspec.convert(BADGES, list[BadgeDefinition])


_LOADED: set[str] = set()  # servers whose catalogue this process has checked

# What the server's role may do with public.badge_definitions (the table may not exist yet).
_PRIVILEGES = sa.text(
    "SELECT current_user AS role, to_regclass('public.badge_definitions') IS NOT NULL AS present,"
    " has_schema_privilege('public', 'CREATE') AS can_create,"
    " coalesce(has_table_privilege(to_regclass('public.badge_definitions'), 'SELECT')"
    " AND has_table_privilege(to_regclass('public.badge_definitions'), 'INSERT')"
    " AND has_table_privilege(to_regclass('public.badge_definitions'), 'UPDATE'), false) AS can_write"
)


class CatalogueUnwritable(Unavailable):
    """The server's role may not create or fill ``public.badge_definitions``; the detail names
    the grant that is missing."""


def _refusal(role: str, present: bool) -> CatalogueUnwritable:
    who = postgresql.dialect().identifier_preparer.quote(role)
    if present:
        return CatalogueUnwritable(
            f"role {role} may not write public.badge_definitions: run "
            f"GRANT SELECT, INSERT, UPDATE ON public.badge_definitions TO {who}, "
            "or run `oneheart impact sync-badges` as the table's owner"
        )
    return CatalogueUnwritable(
        f"role {role} may not create public.badge_definitions: run GRANT CREATE ON SCHEMA public TO {who}, "
        "or run `oneheart impact sync-badges` as the schema's owner"
    )


async def ensure_catalogue(engine: AsyncEngine, *, force: bool = False) -> int:
    """Create ``public.badge_definitions`` on ``engine``'s server if needed and load the shipped
    definitions (insert or update; never delete). Returns how many rows changed.

    :class:`CatalogueUnwritable` (503) when the server's role lacks the privileges (CREATE on
    schema ``public`` for the first load, then SELECT/INSERT/UPDATE on the table); the
    :class:`~core.errors.Unavailable` of the router when the server is down."""
    server = engine.url.render_as_string(hide_password=True)
    if server in _LOADED and not force:
        return 0
    changed = 0
    # Its own transaction whatever the engine's isolation (a read connection's is autocommit):
    # the advisory lock below must hold until the load commits.
    try:
        async with engine.execution_options(isolation_level="READ COMMITTED").begin() as conn:
            # Concurrent first loads (workers, API nodes) queue here instead of racing on CREATE TABLE.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('oh-badge-definitions'))"))
            may = (await conn.execute(_PRIVILEGES)).one()
            if not (may.can_write if may.present else may.can_create):
                raise _refusal(may.role, may.present)
            await conn.run_sync(lambda sync: D.create(sync, checkfirst=True))
            for badge in catalogue():
                row = {
                    "code": badge.code,
                    "name": badge.name,
                    "description": badge.description,
                    "rule": msgspec.to_builtins(badge.rule),
                    "valid_days": badge.valid_days,
                    "active": badge.active,
                }
                upsert = insert(D).values(**row)
                fields = ("name", "description", "rule", "valid_days", "active")
                done = await conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[D.c.code],
                        set_={**{f: upsert.excluded[f] for f in fields}, "updated_at": sa.func.now()},
                        where=sa.tuple_(*(D.c[f] for f in fields)).is_distinct_from(
                            sa.tuple_(*(upsert.excluded[f] for f in fields))
                        ),
                    )
                )
                changed += done.rowcount
    except Exception as exc:
        if is_server_down(exc):
            raise Unavailable(f"database server {engine.url.host}:{engine.url.port} is unavailable") from exc
        raise
    _LOADED.add(server)
    return changed


async def definitions(conn: AsyncConnection, *, active_only: bool = True) -> list[BadgeDefinition]:
    query = sa.select(D.c.code, D.c.name, D.c.description, D.c.rule, D.c.valid_days, D.c.active).order_by(D.c.code)
    if active_only:
        query = query.where(D.c.active)
    out = []
    for r in await conn.execute(query):
        try:
            out.append(msgspec.convert({str(k): v for k, v in r._mapping.items()}, BadgeDefinition))
        except msgspec.ValidationError as exc:  # e.g. a rule kind only a newer node knows
            log.warning("badge definition skipped", code=r.code, error=str(exc))
    return out


@dataclass(frozen=True, slots=True)
class Standing:
    """What rules are checked against, after this payout."""

    player_id: uuid.UUID
    level: int
    streak_days: int
    now: datetime


@dataclass(frozen=True, slots=True)
class Awarded:
    badge: BadgeDefinition
    id: int
    awarded_at: datetime
    expires_at: datetime | None


def _count_filter(rule: CountRule, now: datetime) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = [sa.true()]
    if rule.status == "validated":
        conditions.append(P.c.validated_at.is_not(None))
    elif rule.status == "auto_approved":
        conditions.append(P.c.source == "auto_approved")
    if rule.category is not None:
        conditions.append(P.c.category == rule.category)
    if rule.within_days is not None:
        conditions.append(P.c.day > (now - timedelta(days=rule.within_days)).date())
    return sa.and_(*conditions)


async def _counts(
    conn: AsyncConnection, player_id: uuid.UUID, badges: list[BadgeDefinition], now: datetime
) -> dict[str, int]:
    """How many of the player's payouts count toward each count rule among ``badges`` (one query)."""
    count_rules = [b for b in badges if isinstance(b.rule, CountRule)]
    if not count_rules:
        return {}
    columns = [
        sa.func.count().filter(_count_filter(b.rule, now)).label(b.code)  # type: ignore[arg-type]
        for b in count_rules
    ]
    row = (await conn.execute(sa.select(*columns).where(P.c.player_id == player_id))).one()
    return dict(row._mapping)


async def award_badges(conn: AsyncConnection, standing: Standing, proof_id: uuid.UUID) -> list[Awarded]:
    """Award every active badge whose rule the player now meets and does not hold (unexpired).

    Runs in the payout's transaction, under its per-player lock, after the payout row is in.
    """
    now = standing.now
    held = {
        r.badge
        for r in await conn.execute(
            sa.select(PB.c.badge).where(
                PB.c.player_id == standing.player_id, sa.or_(PB.c.expires_at.is_(None), PB.c.expires_at > now)
            )
        )
    }
    todo = [b for b in await definitions(conn) if b.code not in held]
    counts = await _counts(conn, standing.player_id, todo, now)
    awarded = []
    for badge in todo:
        if not _met(badge.rule, standing, counts.get(badge.code, 0)):
            continue
        expires = now + timedelta(days=badge.valid_days) if badge.valid_days else None
        row = (
            await conn.execute(
                insert(PB)
                .values(
                    player_id=standing.player_id,
                    badge=badge.code,
                    awarded_at=now,
                    expires_at=expires,
                    proof_id=proof_id,
                )
                .on_conflict_do_nothing()
                .returning(PB.c.id)
            )
        ).first()
        if row is not None:
            awarded.append(Awarded(badge, row.id, now, expires))
    return awarded


@dataclass(frozen=True, slots=True)
class Toward:
    """How far a player is toward a badge they do not hold."""

    badge: BadgeDefinition
    kind: str  # the rule's kind: count, level or streak
    have: int
    need: int


def _have(rule: Rule, standing: Standing, count: int) -> tuple[int, int]:
    if isinstance(rule, CountRule):
        return count, rule.count
    if isinstance(rule, LevelRule):
        return standing.level, rule.level
    return standing.streak_days, rule.days


async def progress(conn: AsyncConnection, standing: Standing, held: set[str]) -> list[Toward]:
    """The active badges the player does not hold (unexpired), each with what the rule
    counts so far and what it needs, the closest first (then by code)."""
    todo = [b for b in await definitions(conn) if b.code not in held]
    counts = await _counts(conn, standing.player_id, todo, standing.now)
    out = []
    for badge in todo:
        have, need = _have(badge.rule, standing, counts.get(badge.code, 0))
        kind = str(msgspec.to_builtins(badge.rule)["kind"])
        out.append(Toward(badge, kind, min(have, need), need))
    return sorted(out, key=lambda t: (-t.have / t.need, t.badge.code))


def _met(rule: Rule, standing: Standing, count: int) -> bool:
    if isinstance(rule, CountRule):
        return count >= rule.count
    if isinstance(rule, LevelRule):
        return standing.level >= rule.level
    return standing.streak_days >= rule.days


async def held_badges(conn: AsyncConnection, player_id: uuid.UUID, now: datetime) -> list[Any]:
    """The player's unexpired badges with their definitions, newest first."""
    query = (
        sa.select(PB.c.badge.label("code"), D.c.name, D.c.description, PB.c.awarded_at, PB.c.expires_at)
        .select_from(PB.outerjoin(D, D.c.code == PB.c.badge))
        .where(PB.c.player_id == player_id, sa.or_(PB.c.expires_at.is_(None), PB.c.expires_at > now))
        .order_by(PB.c.awarded_at.desc(), PB.c.id.desc())
    )
    return list(await conn.execute(query))
