"""Key names, periods and expiry times of the leaderboards (pure functions; UTC)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from core import redis as node_redis
from core.settings import Settings

Period = Literal["all", "day", "week"]
PERIODS: tuple[Period, ...] = ("all", "day", "week")
DAY = 86400


def prefix(settings: Settings, territory: str) -> str:
    """The territory's leaderboard namespace on this node: ``<node prefix>:lb:<territory>``;
    every other key function takes it (``ns``)."""
    return f"{node_redis.prefix(settings)}:lb:{territory}"


def scope_of(zone_id: uuid.UUID | str | None) -> str:
    return "all" if zone_id is None else f"zone:{zone_id}"


def period_name(period: Period, on: date) -> str:
    """``all``, ``day:2026-03-09`` or ``week:2026-W11`` (ISO week) for the period holding ``on``."""
    if period == "all":
        return "all"
    if period == "day":
        return f"day:{on.isoformat()}"
    year, week, _ = on.isocalendar()
    return f"week:{year}-W{week:02d}"


def board(ns: str, scope: str, period_key: str) -> str:
    return f"{ns}:{scope}:{period_key}"


def applied(ns: str) -> str:
    return f"{ns}:applied"


def index(ns: str) -> str:
    return f"{ns}:keys"


def ledger(ns: str) -> str:
    """Which ledger the boards mirror (:func:`ledger_id`)."""
    return f"{ns}:ledger"


def ledger_id(genesis: bytes | None) -> str:
    """A ledger's name in Redis: the hash of its first entry (``empty`` before it has one)."""
    return genesis.hex() if genesis else "empty"


def expires_at(period: Period, on: date, settings: Settings) -> int:
    """Unix time a board of this period is dropped (0: never): the period's end plus what is kept."""
    if period == "all":
        return 0
    if period == "day":
        end = on + timedelta(days=1 + settings.economy.leaderboard_days_kept)
    else:
        monday = on - timedelta(days=on.weekday())
        end = monday + timedelta(days=7 * (1 + settings.economy.leaderboard_weeks_kept))
    return int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())


def targets(
    ns: str, zone_id: uuid.UUID | str | None, at: datetime, settings: Settings, now: float
) -> list[tuple[str, int]]:
    """Every ``(board key, expire-at)`` an XP gain at ``at`` counts in, leaving out boards of
    periods already dropped (a late event must not bring an expired day back)."""
    on = at.astimezone(UTC).date()
    scopes = ["all"] if zone_id is None else ["all", scope_of(zone_id)]
    out: list[tuple[str, int]] = []
    for period in PERIODS:
        expiry = expires_at(period, on, settings)
        if expiry and expiry <= now:
            continue
        out.extend((board(ns, scope, period_name(period, on)), expiry) for scope in scopes)
    return out
