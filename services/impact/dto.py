from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from services.impact.badges import Rule
from services.impact.rules import ImpactPolicy


class PolicyOut(msgspec.Struct):
    territory: str
    policy: ImpactPolicy
    formula: str


class Level(msgspec.Struct):
    level: int
    xp: int  # total XP needed to reach it


class LevelCurve(msgspec.Struct):
    territory: str
    formula: str
    level_base: int
    level_exponent: float
    max_level: int
    levels: list[Level]


class Badge(msgspec.Struct):
    code: str
    name: str
    description: str
    rule: Rule
    valid_days: int | None


class HeldBadge(msgspec.Struct):
    code: str
    name: str | None
    description: str | None
    awarded_at: datetime
    expires_at: datetime | None


class BadgeProgress(msgspec.Struct):
    code: str
    name: str
    description: str
    kind: str  # the rule's kind: count, level or streak
    have: int  # what the rule counts so far (proofs, the level, days in a row)
    need: int


class Standing(msgspec.Struct):
    territory: str
    level: int
    xp: int
    tokens: int
    next_level_xp: int | None  # total XP for the next level (None at the top)
    badges: list[HeldBadge]
    level_xp: int  # total XP at which the current level began
    streak_days: int  # consecutive UTC days with an approved proof, ending today or yesterday (0: none)
    next_badges: list[BadgeProgress]  # badges not held yet, the closest first


class ProofPayout(msgspec.Struct):
    """What one proof paid: XP and Heart tokens, when, and what approved it."""

    xp: int
    tokens: int
    source: str  # "auto_approved" or "validated"
    multipliers: dict[str, Any]
    ledger_seq: int | None
    paid_at: datetime
