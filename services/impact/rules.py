"""How much a proof pays, and the level curve: pure functions over a territory's impact policy.

A payout is the quest's base values times the product of the multipliers, capped::

    zone          policy.zones[zone_id], default 1.0
    difficulty    policy.difficulty[d]: 1 -> 1.0, 2 -> 1.25, 3 -> 1.5, 4 -> 2.0, 5 -> 2.5
    level         min(1.5, 1 + 0.02 * (level - 1))       the player's level before this payout
    streak        min(1.5, 1 + 0.05 * (days - 1))        consecutive UTC days with an approved proof,
                                                         ending on this proof's day (it included)
    duration      min(1.5, 1 + 0.1 * (hours - 1)), >= 1  when witnesses confirmed a duration, else 1
    beneficiaries min(1.5, 1 + 0.1 * log2(1 + people))   when witnesses confirmed a count, else 1

    total  = min(4.0, product of the above)
    xp     = round_half_up(base_xp * total)
    tokens = round_half_up(base_tokens * total)

Every factor is rounded to 4 decimals before multiplying, and the arithmetic is decimal, so a
payout is the same on every machine. Steps and caps are the defaults; a territory changes them
in its ``impact`` policy (``oneheart impact policy``), published at ``GET /api/impact/policy``.

Levels: reaching level ``n`` takes ``xp_for_level(n) = round(level_base * (n - 1) ** level_exponent)``
XP in total (defaults 100 and 1.5: level 2 at 100 XP, 3 at 283, 5 at 800, 10 at 2,700), up to
``max_level``; published at ``GET /api/impact/levels``. XP is the ledger's (balances of
``player:<id>``); ``players.level`` and ``players.xp`` are a copy kept in step by each payout.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

import msgspec

KEY = "impact"
Factor = Annotated[float, msgspec.Meta(ge=0, le=10)]
Step = Annotated[float, msgspec.Meta(ge=0, le=1)]
Cap = Annotated[float, msgspec.Meta(ge=1, le=10)]
_PLACES = Decimal("0.0001")


def _difficulty() -> dict[str, float]:
    return {"1": 1.0, "2": 1.25, "3": 1.5, "4": 2.0, "5": 2.5}


class ImpactPolicy(msgspec.Struct, forbid_unknown_fields=True):
    """A territory's multipliers and level curve (stored under "impact" in its policies)."""

    difficulty: dict[str, Factor] = msgspec.field(default_factory=_difficulty)
    zones: dict[str, Factor] = msgspec.field(default_factory=dict)  # zone id -> factor
    level_step: Step = 0.02
    level_cap: Cap = 1.5
    streak_step: Step = 0.05
    streak_cap: Cap = 1.5
    duration_step: Step = 0.1  # per hour beyond the first
    duration_cap: Cap = 1.5
    beneficiaries_step: Step = 0.1  # per doubling of the people helped
    beneficiaries_cap: Cap = 1.5
    total_cap: Cap = 4.0
    level_base: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100
    level_exponent: Annotated[float, msgspec.Meta(ge=1, le=3)] = 1.5
    max_level: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100

    def __post_init__(self) -> None:
        if set(self.difficulty) != {"1", "2", "3", "4", "5"}:
            raise ValueError("difficulty needs a factor for each of 1, 2, 3, 4 and 5")
        try:
            self.zones = {str(uuid.UUID(zone)): factor for zone, factor in self.zones.items()}
        except ValueError:
            raise ValueError("zones: every key must be a zone id") from None


@dataclass(frozen=True, slots=True)
class Facts:
    """What a payout depends on besides the policy."""

    base_xp: int
    base_tokens: int
    difficulty: int
    zone_id: str
    level: int  # before this payout
    streak_days: int  # >= 1: this proof's day counts
    duration_minutes: int | None = None
    beneficiaries: int | None = None


@dataclass(frozen=True, slots=True)
class Award:
    xp: int
    tokens: int
    multipliers: dict[str, float]  # each factor and "total"


def _d(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_PLACES, ROUND_HALF_UP)


def multipliers(policy: ImpactPolicy, facts: Facts) -> dict[str, Decimal]:
    hours = None if facts.duration_minutes is None else facts.duration_minutes / 60
    factors = {
        "zone": _d(policy.zones.get(facts.zone_id, 1.0)),
        "difficulty": _d(policy.difficulty[str(facts.difficulty)]),
        "level": _d(min(policy.level_cap, 1 + policy.level_step * (max(1, facts.level) - 1))),
        "streak": _d(min(policy.streak_cap, 1 + policy.streak_step * (max(1, facts.streak_days) - 1))),
        "duration": _d(
            1.0 if hours is None else min(policy.duration_cap, max(1.0, 1 + policy.duration_step * (hours - 1)))
        ),
        "beneficiaries": _d(
            1.0
            if facts.beneficiaries is None
            else min(policy.beneficiaries_cap, 1 + policy.beneficiaries_step * math.log2(1 + facts.beneficiaries))
        ),
    }
    total = Decimal(1)
    for factor in factors.values():
        total *= factor
    factors["total"] = min(_d(policy.total_cap), total.quantize(_PLACES, ROUND_HALF_UP))
    return factors


def award(policy: ImpactPolicy, facts: Facts) -> Award:
    factors = multipliers(policy, facts)
    total = factors["total"]

    def times(base: int) -> int:
        return int((Decimal(base) * total).quantize(Decimal(1), ROUND_HALF_UP))

    return Award(times(facts.base_xp), times(facts.base_tokens), {k: float(v) for k, v in factors.items()})


def streak_days(day: date, days: set[date]) -> int:
    """Consecutive days ending on ``day`` (counted whether or not it is in ``days``)."""
    n = 1
    while day - timedelta(days=n) in days:
        n += 1
    return n


def current_streak(today: date, days: set[date]) -> int:
    """The streak a player is on: consecutive days with an approved proof ending today, or
    yesterday (today is not over yet); 0 when neither day has one."""
    for end in (today, today - timedelta(days=1)):
        if end in days:
            return streak_days(end, days)
    return 0


def streak_window(policy: ImpactPolicy) -> int:
    """How many days back a streak can still raise the multiplier (beyond that it is capped)."""
    if policy.streak_step <= 0:
        return 1
    return min(366, math.ceil((policy.streak_cap - 1) / policy.streak_step) + 1)


def xp_for_level(policy: ImpactPolicy, level: int) -> int:
    """Total XP needed to reach ``level`` (level 1 needs none)."""
    return round(policy.level_base * (max(1, level) - 1) ** policy.level_exponent)


def level_for(policy: ImpactPolicy, xp: int) -> int:
    """The level a player with ``xp`` XP in total has."""
    low, high = 1, policy.max_level
    while low < high:  # the highest level whose threshold xp reaches
        mid = (low + high + 1) // 2
        if xp_for_level(policy, mid) <= xp:
            low = mid
        else:
            high = mid - 1
    return low
