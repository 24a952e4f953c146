"""Impact: what a territory's proofs pay and what a player stands at.

:func:`pay` pays each approved proof once, then levels, badges and notifications; the
consumers (:mod:`services.impact.consumers`) call it for ``proof.verified`` (decision
``auto_approved``) and ``proof.validated`` (the community). Each handler runs in the
territory's transaction with the consumer's inbox row, so a redelivered event does nothing;
and the ``payouts`` primary key (the proof id) makes a proof
pay once whatever events name it: an auto-approved proof the community validates later is not
paid again (it is marked validated, and the player told). Everything a payout writes — the
payout row, the ledger entry and balances, ``players.xp``/``level``, badges, notifications and
the events — commits together or not at all.

Payouts of one player queue on a per-player transaction lock, so streaks, levels and badge
counts are computed from a stable history.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.db import row_to
from core.events.outbox import emit
from core.routing import territory_of
from services.impact import badges, rules
from services.impact.dto import Badge, BadgeProgress, HeldBadge, Level, LevelCurve, PolicyOut, ProofPayout, Standing
from services.impact.models import payouts
from services.ledger import service as ledger
from services.ledger.models import balances
from services.notifications.service import notify
from services.players.models import players
from services.players.service import ensure_player
from services.proofs import service as lifecycle
from services.proofs.models import proofs
from services.quests.models import quests
from territories.policy import policy_from, read_policy, stored_policy

log = structlog.get_logger(__name__)
FORMULA = inspect.cleandoc(rules.__doc__ or "")
LEVEL_FORMULA = "xp_for_level(n) = round(level_base * (n - 1) ** level_exponent)"
Clock = Callable[[], datetime]
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended('oh-impact:' || :player, 0))")
# Proof statuses that may be paid, by what approved them.
PAYABLE = {
    "auto_approved": ("auto_approved", "validated"),
    "validated": ("auto_approved", "needs_community", "validated"),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Approval:
    territory: str
    proof_id: uuid.UUID
    player_id: uuid.UUID
    quest_id: uuid.UUID
    source: str  # "auto_approved" or "validated"
    duration_minutes: int | None = None
    beneficiaries: int | None = None


def _read(proof_id: uuid.UUID, player_id: uuid.UUID) -> sa.Select[Any]:
    account = ledger.player_account(player_id)
    return (
        sa.select(
            proofs.c.player_id,
            proofs.c.quest_id,
            proofs.c.status,
            proofs.c.captured_at,
            quests.c.title,
            quests.c.zone_id,
            quests.c.category,
            quests.c.base_xp,
            quests.c.base_tokens,
            quests.c.difficulty,
            payouts.c.proof_id.label("paid"),
            payouts.c.validated_at,
            stored_policy(rules.KEY).label("policy"),
            sa.select(balances.c.xp).where(balances.c.account == account).scalar_subquery().label("ledger_xp"),
            sa.select(players.c.level).where(players.c.id == player_id).scalar_subquery().label("player_level"),
        )
        .select_from(
            proofs.join(quests, quests.c.id == proofs.c.quest_id).outerjoin(payouts, payouts.c.proof_id == proofs.c.id)
        )
        .where(proofs.c.id == proof_id)
    )


async def _streak(conn: AsyncConnection, policy: rules.ImpactPolicy, player_id: uuid.UUID, day: date) -> int:
    since = day - timedelta(days=rules.streak_window(policy))
    days = await conn.execute(
        sa.select(payouts.c.day).distinct().where(payouts.c.player_id == player_id, payouts.c.day.between(since, day))
    )
    return rules.streak_days(day, {r.day for r in days})


async def pay(conn: AsyncConnection, approval: Approval, *, with_badges: bool = True, clock: Clock = utcnow) -> bool:
    """Pay ``approval``'s proof unless it was paid already; True when it paid now."""
    a = approval
    await conn.execute(_LOCK, {"player": str(a.player_id)})
    row = (await conn.execute(_read(a.proof_id, a.player_id))).first()
    if row is None or row.player_id != a.player_id or row.quest_id != a.quest_id:
        log.warning("approval for an unknown proof ignored", territory=a.territory, proof_id=str(a.proof_id))
        return False
    policy = policy_from(row.policy, rules.ImpactPolicy)
    now = clock()
    if row.paid is not None:
        if a.source == "validated" and row.validated_at is None:
            await _validated_later(conn, a, row, policy, now, with_badges)
        return False
    if row.status not in PAYABLE[a.source]:
        log.warning("approval of a proof that is not payable ignored", proof_id=str(a.proof_id), status=row.status)
        return False

    level_before = rules.level_for(policy, int(row.ledger_xp or 0))
    day = row.captured_at.astimezone(UTC).date()
    streak = await _streak(conn, policy, a.player_id, day)
    facts = rules.Facts(
        row.base_xp,
        row.base_tokens,
        row.difficulty,
        str(row.zone_id),
        level_before,
        streak,
        a.duration_minutes,
        a.beneficiaries,
    )
    got = rules.award(policy, facts)
    claimed = (
        await conn.execute(
            insert(payouts)
            .values(
                proof_id=a.proof_id,
                player_id=a.player_id,
                quest_id=a.quest_id,
                zone_id=row.zone_id,
                category=row.category,
                source=a.source,
                validated_at=now if a.source == "validated" else None,
                day=day,
                xp=got.xp,
                tokens=got.tokens,
                multipliers={**got.multipliers, "streak_days": streak, "level_before": level_before},
            )
            .on_conflict_do_nothing()
            .returning(payouts.c.proof_id)
        )
    ).first()
    if claimed is None:  # cannot happen under the player lock; the key is the guarantee anyway
        return False
    seq = None
    if got.xp or got.tokens:
        entry = await ledger.append(
            conn,
            a.territory,
            kind="mint",
            debit="mint",
            credit=ledger.player_account(a.player_id),
            amount=got.tokens,
            xp=got.xp,
            ref_type="proof",
            ref_id=str(a.proof_id),
            clock=clock,
        )
        seq = entry.seq
        await conn.execute(payouts.update().where(payouts.c.proof_id == a.proof_id).values(ledger_seq=seq))
    level, xp = await _sync_player(conn, a, policy)
    await notify(
        conn,
        a.player_id,
        "payout",
        f"+{got.xp} XP, +{got.tokens} Heart tokens",
        f"For “{row.title}”.",
        {
            "proof_id": str(a.proof_id),
            "quest_id": str(a.quest_id),
            "quest_title": row.title,
            "xp": got.xp,
            "tokens": got.tokens,
            "multipliers": got.multipliers,
            "seq": seq,
        },
        key=f"payout:{a.proof_id}",
    )
    if a.source == "validated":
        await _notify_validated(conn, a, row.title)
    # A level above the stored one is news (players.level was the level before this payout).
    previous = row.player_level or 1
    if level > previous:
        await _leveled_up(conn, a, policy, level, previous, xp)
    if with_badges:
        await _award(conn, a, level, streak, now)
    await lifecycle.paid(
        conn,
        a.proof_id,
        {
            "player_id": str(a.player_id),
            "quest_id": str(a.quest_id),
            "zone_id": str(row.zone_id),
            "category": row.category,
            "xp": got.xp,
            "tokens": got.tokens,
            "seq": seq,
            "source": a.source,
        },
    )
    log.info("proof paid", territory=a.territory, proof_id=str(a.proof_id), xp=got.xp, tokens=got.tokens, seq=seq)
    return True


async def _sync_player(conn: AsyncConnection, a: Approval, policy: rules.ImpactPolicy) -> tuple[int, int]:
    """Copy the ledger's XP (authoritative) and the level it gives into ``players``."""
    await ensure_player(conn, a.player_id)
    _, xp = await ledger.get_balance(conn, ledger.player_account(a.player_id))
    level = rules.level_for(policy, xp)
    await conn.execute(players.update().where(players.c.id == a.player_id).values(xp=xp, level=level))
    return level, xp


async def _leveled_up(
    conn: AsyncConnection, a: Approval, policy: rules.ImpactPolicy, level: int, previous: int, xp: int
) -> None:
    await emit(
        conn,
        "player.leveled_up",
        {
            "player_id": str(a.player_id),
            "level": level,
            "previous_level": previous,
            "xp": xp,
            "proof_id": str(a.proof_id),
        },
    )
    await notify(
        conn,
        a.player_id,
        "level_up",
        f"Level {level}!",
        f"You reached level {level} with {xp} XP.",
        {"level": level, "previous_level": previous, "xp": xp, "next_level_xp": _next(policy, level)},
        key=f"level:{level}",
    )


def _next(policy: rules.ImpactPolicy, level: int) -> int | None:
    return rules.xp_for_level(policy, level + 1) if level < policy.max_level else None


async def _notify_validated(conn: AsyncConnection, a: Approval, title: str) -> None:
    await notify(
        conn,
        a.player_id,
        "validated",
        "Your proof was validated",
        f"Your community confirmed “{title}”.",
        {"proof_id": str(a.proof_id), "quest_id": str(a.quest_id), "quest_title": title},
        key=f"validated:{a.proof_id}",
    )


async def _validated_later(
    conn: AsyncConnection, a: Approval, row: Any, policy: rules.ImpactPolicy, now: datetime, with_badges: bool
) -> None:
    """The community validated a proof that was already paid: no second payout; it now counts
    for "validated" badges, and the player hears about it."""
    await conn.execute(payouts.update().where(payouts.c.proof_id == a.proof_id).values(validated_at=now))
    await _notify_validated(conn, a, row.title)
    if with_badges:
        level = rules.level_for(policy, int(row.ledger_xp or 0))
        streak = await _streak(conn, policy, a.player_id, row.captured_at.astimezone(UTC).date())
        await _award(conn, a, level, streak, now)


async def _award(conn: AsyncConnection, a: Approval, level: int, streak: int, now: datetime) -> None:
    for got in await badges.award_badges(conn, badges.Standing(a.player_id, level, streak, now), a.proof_id):
        b = got.badge
        await emit(
            conn,
            "badge.awarded",
            {
                "player_id": str(a.player_id),
                "badge": b.code,
                "name": b.name,
                "awarded_at": got.awarded_at.isoformat(),
                "expires_at": got.expires_at.isoformat() if got.expires_at else None,
                "proof_id": str(a.proof_id),
            },
        )
        await notify(
            conn,
            a.player_id,
            "badge",
            f"Badge: {b.name}",
            b.description,
            {
                "badge": b.code,
                "name": b.name,
                "expires_at": got.expires_at.isoformat() if got.expires_at else None,
            },
            key=f"badge:{b.code}:{got.id}",
        )


# --- what the API shows -------------------------------------------------------------------
async def policy(conn: AsyncConnection) -> PolicyOut:
    """The territory's impact policy (defaults filled in) with the documented formula."""
    return PolicyOut(territory_of(conn), await read_policy(conn, rules.KEY, rules.ImpactPolicy), FORMULA)


async def level_curve(conn: AsyncConnection, up_to: int | None = None) -> LevelCurve:
    """Total XP to reach each level, up to ``up_to`` (at most the policy's ``max_level``)."""
    p = await read_policy(conn, rules.KEY, rules.ImpactPolicy)
    last = min(up_to or p.max_level, p.max_level)
    levels = [Level(n, rules.xp_for_level(p, n)) for n in range(1, last + 1)]
    return LevelCurve(territory_of(conn), LEVEL_FORMULA, p.level_base, p.level_exponent, p.max_level, levels)


async def list_badges(conn: AsyncConnection) -> list[Badge]:
    """The active badges of the connection's server (loaded there first if needed)."""
    await badges.ensure_catalogue(conn.engine)
    return [Badge(b.code, b.name, b.description, b.rule, b.valid_days) for b in await badges.definitions(conn)]


async def current_streak(conn: AsyncConnection, player_id: uuid.UUID, today: date) -> int:
    """Consecutive UTC days with an approved (paid) proof, ending today or yesterday; 0 when
    neither (the same days a payout's streak multiplier counts, :func:`rules.streak_days`)."""
    since = today - timedelta(days=366)
    days = await conn.execute(
        sa.select(payouts.c.day).distinct().where(payouts.c.player_id == player_id, payouts.c.day.between(since, today))
    )
    return rules.current_streak(today, {r.day for r in days})


async def standing(conn: AsyncConnection, identity: Identity, now: datetime | None = None) -> Standing:
    """The caller's level (and the XP it began at), XP, Heart tokens, current streak,
    unexpired badges and the badges closest to earn in the connection's territory."""
    await badges.ensure_catalogue(conn.engine)
    now = now or utcnow()
    p = await read_policy(conn, rules.KEY, rules.ImpactPolicy)
    tokens, xp = await ledger.get_balance(conn, ledger.player_account(identity.user_id))
    held = await badges.held_badges(conn, identity.user_id, now)
    level = rules.level_for(p, xp)
    streak = await current_streak(conn, identity.user_id, now.astimezone(UTC).date())
    toward = await badges.progress(conn, badges.Standing(identity.user_id, level, streak, now), {h.code for h in held})
    return Standing(
        territory_of(conn),
        level,
        xp,
        tokens,
        _next(p, level),
        [row_to(HeldBadge, h) for h in held],
        rules.xp_for_level(p, level),
        streak,
        [BadgeProgress(t.badge.code, t.badge.name, t.badge.description, t.kind, t.have, t.need) for t in toward],
    )


async def payout_of(conn: AsyncConnection, proof_id: uuid.UUID) -> ProofPayout | None:
    """What a proof paid (None until it is paid). Callers check who may see the proof first."""
    row = (await conn.execute(sa.select(payouts).where(payouts.c.proof_id == proof_id))).first()
    if row is None:
        return None
    return ProofPayout(
        xp=int(row.xp),
        tokens=int(row.tokens),
        source=row.source,
        multipliers=dict(row.multipliers or {}),
        ledger_seq=row.ledger_seq,
        paid_at=row.created_at,
    )


async def recent_zone(conn: AsyncConnection, player_id: uuid.UUID) -> uuid.UUID | None:
    """The zone of the player's latest paid proof (where they are active), or None."""
    found = await conn.execute(
        sa.select(payouts.c.zone_id)
        .where(payouts.c.player_id == player_id)
        .order_by(payouts.c.created_at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


async def paid_for(conn: AsyncConnection, proof_id: uuid.UUID) -> tuple[int, int] | None:
    """The XP and Heart tokens a proof paid, or None while it has not been paid."""
    row = (await conn.execute(sa.select(payouts.c.xp, payouts.c.tokens).where(payouts.c.proof_id == proof_id))).first()
    return (int(row.xp), int(row.tokens)) if row is not None else None
