"""What proofs pay in a territory (policy, level curve, badges) and the caller's standing."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from core.auth import Identity
from core.routing import Router, Territory
from services.impact import badges, rules
from services.impact.rules import ImpactPolicy
from services.ledger.service import get_balance, player_account
from services.quests.controllers import READ_ERRORS
from territories.policy import read_policy

FORMULA = inspect.cleandoc(rules.__doc__ or "")


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
    rule: badges.Rule
    valid_days: int | None


class HeldBadge(msgspec.Struct):
    code: str
    name: str | None
    description: str | None
    awarded_at: datetime
    expires_at: datetime | None


class Standing(msgspec.Struct):
    territory: str
    level: int
    xp: int
    tokens: int
    next_level_xp: int | None  # total XP for the next level (None at the top)
    badges: list[HeldBadge]


class ImpactController(Controller):
    path = "/api/impact"
    tags = ["impact"]

    @get("/policy", responses=READ_ERRORS, summary="The territory's payout multipliers and level curve")
    async def policy(self, router: NamedDependency[Router], territory: NamedDependency[Territory]) -> PolicyOut:
        async with router.read(territory) as conn:
            policy = await read_policy(conn, rules.KEY, ImpactPolicy)
        return PolicyOut(territory.code, policy, FORMULA)

    @get("/levels", responses=READ_ERRORS, summary="The territory's level curve: total XP to reach each level")
    async def levels(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        up_to: Annotated[int | None, QueryParameter(ge=1, le=1000, description="Last level listed")] = None,
    ) -> LevelCurve:
        async with router.read(territory) as conn:
            policy = await read_policy(conn, rules.KEY, ImpactPolicy)
        last = min(up_to or policy.max_level, policy.max_level)
        return LevelCurve(
            territory.code,
            "xp_for_level(n) = round(level_base * (n - 1) ** level_exponent)",
            policy.level_base,
            policy.level_exponent,
            policy.max_level,
            [Level(n, rules.xp_for_level(policy, n)) for n in range(1, last + 1)],
        )

    @get("/badges", responses=READ_ERRORS, summary="The badges players can earn and their rules")
    async def list_badges(self, router: NamedDependency[Router], territory: NamedDependency[Territory]) -> list[Badge]:
        await badges.ensure_catalogue(await router.engine(territory.server_alias))
        async with router.read(territory) as conn:
            found = await badges.definitions(conn)
        return [Badge(b.code, b.name, b.description, b.rule, b.valid_days) for b in found]

    @get("/me", responses=READ_ERRORS, summary="The caller's level, XP, Heart tokens and badges in the territory")
    async def me(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Standing:
        await badges.ensure_catalogue(await router.engine(territory.server_alias))
        async with router.read(territory) as conn:
            policy = await read_policy(conn, rules.KEY, ImpactPolicy)
            tokens, xp = await get_balance(conn, player_account(identity.user_id))
            held = await badges.held_badges(conn, identity.user_id, datetime.now(UTC))
        level = rules.level_for(policy, xp)
        return Standing(
            territory.code,
            level,
            xp,
            tokens,
            rules.xp_for_level(policy, level + 1) if level < policy.max_level else None,
            [HeldBadge(*h) for h in held],
        )
