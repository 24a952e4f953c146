"""Demo content for the development stack (``oneheart stack seed``): a few zones, quests of
every type and several categories, and a reward or two in the demo territories, so that the
``demo`` account can sign in and play at once. Never part of the product.

Everything goes through the domains' own service functions (the same ones the API calls), in
one transaction per territory, and is idempotent: a zone is found by its name, a quest by its
zone and title, a reward by its title; what exists is left as it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.routing import Router
from services.quests.dto import QuestIn
from services.quests.models import quests
from services.quests.service import create_quest
from services.rewards.dto import RewardIn
from services.rewards.models import rewards
from services.rewards.service import create_reward
from services.zones.dto import ZoneIn
from services.zones.models import zones
from services.zones.service import create_zone

# Who "created" the demo content (quests and rewards name their creator).
SEED_USER = uuid.uuid5(uuid.NAMESPACE_URL, "https://oneheart.invalid/devstack/seed")


@dataclass(frozen=True)
class DemoQuest:
    title: str
    type: str
    category: str
    base_xp: int
    base_tokens: int
    difficulty: int
    description: str
    max_completions: int = 1
    open_days: int | None = None  # an end this many days after the first seed


@dataclass(frozen=True)
class DemoZone:
    name: str
    lat: float
    lng: float
    radius_m: float
    quests: list[DemoQuest] = field(default_factory=list)


@dataclass(frozen=True)
class DemoReward:
    title: str
    price: int
    stock: int
    description: str


DEMO: dict[str, tuple[list[DemoZone], list[DemoReward]]] = {
    # Around Copenhagen (55.68, 12.57).
    "dk": (
        [
            DemoZone(
                "Amager Strand",
                55.6596,
                12.6406,
                1500,
                [
                    DemoQuest(
                        "Beach clean-up",
                        "daily",
                        "beach_cleanup",
                        50,
                        10,
                        2,
                        "Fill a bag with litter from the beach and photograph it by the bins.",
                        max_completions=30,
                    ),
                ],
            ),
            DemoZone(
                "Kongens Have",
                55.6854,
                12.5786,
                400,
                [
                    DemoQuest(
                        "Plant a tree with the park crew",
                        "story",
                        "trees",
                        120,
                        25,
                        3,
                        "Join the Saturday planting and show the tree you planted.",
                    ),
                    DemoQuest(
                        "A month of green deeds",
                        "ascension",
                        "nature",
                        300,
                        60,
                        5,
                        "Care for the park's beds for a month; show the bed you looked after.",
                        open_days=30,
                    ),
                ],
            ),
            DemoZone(
                "Fælledparken",
                55.7003,
                12.5719,
                700,
                [
                    DemoQuest(
                        "Litter walk in the park",
                        "daily",
                        "litter",
                        40,
                        8,
                        1,
                        "Walk a round of the park and pick up what others dropped.",
                        max_completions=30,
                    ),
                    DemoQuest(
                        "Teach a neighbour to ride a bike",
                        "community",
                        "teaching",
                        80,
                        15,
                        2,
                        "An hour of cycling lessons for a neighbour, child or grown-up.",
                        max_completions=5,
                    ),
                ],
            ),
        ],
        [
            DemoReward("Coffee at the community café", 50, 100, "A cup of coffee at the café by Fælledparken."),
            DemoReward("Bike repair session", 150, 20, "An hour at the repair workshop with a mechanic."),
        ],
    ),
    # Around Kautokeino / Guovdageaidnu (69.01, 23.04).
    "sami": (
        [
            DemoZone(
                "Guovdageaidnu centre",
                69.0114,
                23.0413,
                800,
                [
                    DemoQuest(
                        "Share a Sámi word a day",
                        "daily",
                        "language",
                        30,
                        5,
                        1,
                        "Teach someone a Northern Sámi word and photograph it written down.",
                        max_completions=30,
                    ),
                    DemoQuest(
                        "Help an elder with firewood",
                        "community",
                        "elder_care",
                        90,
                        20,
                        3,
                        "Carry and stack firewood for an elder of the village.",
                        max_completions=10,
                    ),
                ],
            ),
            DemoZone(
                "Guovdageaineatnu riverbank",
                69.0050,
                23.0550,
                1500,
                [
                    DemoQuest(
                        "Riverbank clean-up",
                        "story",
                        "litter",
                        60,
                        12,
                        2,
                        "Clear the riverbank of litter after the winter.",
                    ),
                ],
            ),
        ],
        [DemoReward("Duodji workshop seat", 120, 20, "A seat at a traditional handicraft workshop.")],
    ),
}


@dataclass
class Seeded:
    created: dict[str, int] = field(default_factory=lambda: {"zones": 0, "quests": 0, "rewards": 0})
    kept: dict[str, int] = field(default_factory=lambda: {"zones": 0, "quests": 0, "rewards": 0})


async def _one(conn: Any, query: Any) -> Any:
    return (await conn.execute(query.limit(1))).scalar()


async def seed_territory(router: Router, code: str, report: Seeded) -> None:
    demo_zones, demo_rewards = DEMO[code]
    now = datetime.now(UTC)
    async with router.transaction(await router.lookup(code)) as conn:
        for z in demo_zones:
            zone_id = await _one(conn, sa.select(zones.c.id).where(zones.c.name == z.name))
            if zone_id is None:
                zone_id = (await create_zone(conn, ZoneIn(z.name, z.lat, z.lng, z.radius_m))).id
                report.created["zones"] += 1
            else:
                report.kept["zones"] += 1
            for q in z.quests:
                found = await _one(
                    conn, sa.select(quests.c.id).where(quests.c.zone_id == zone_id, quests.c.title == q.title)
                )
                if found is not None:
                    report.kept["quests"] += 1
                    continue
                ends = now + timedelta(days=q.open_days) if q.open_days else None
                data = QuestIn(
                    title=q.title,
                    type=q.type,  # type: ignore[arg-type]
                    category=q.category,
                    zone_id=zone_id,
                    base_xp=q.base_xp,
                    base_tokens=q.base_tokens,
                    difficulty=q.difficulty,
                    description=q.description,
                    ends_at=ends,
                    max_completions=q.max_completions,
                )
                await create_quest(conn, data, SEED_USER)
                report.created["quests"] += 1
        for r in demo_rewards:
            if await _one(conn, sa.select(rewards.c.id).where(rewards.c.title == r.title)) is not None:
                report.kept["rewards"] += 1
                continue
            await create_reward(conn, RewardIn(r.title, r.price, r.stock, r.description), SEED_USER)
            report.created["rewards"] += 1


async def seed(router: Router, codes: list[str] | None = None) -> Seeded:
    report = Seeded()
    for code in codes or list(DEMO):
        await seed_territory(router, code, report)
    return report
