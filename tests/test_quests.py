"""Quests: operators create them in zones; players find them near a point, start them, see history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Node

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Zones around Copenhagen (dk): Amager Strand, and Aarhus ~160 km away.
AMAGER = {"name": "Amager Strand", "lat": 55.6596, "lng": 12.6406, "radius_m": 1500}
AARHUS = {"name": "Aarhus Havn", "lat": 56.1572, "lng": 10.2107, "radius_m": 2000}


def player(node: Node, territory: str = "dk") -> tuple[uuid.UUID, dict[str, str]]:
    user = uuid.uuid4()
    return user, node.auth(home=territory, roles={territory: ["player"]}, user_id=user)


async def make_zone(node: Node, zone: dict[str, object], territory: str = "dk") -> str:
    async with node.client(territory) as c:
        r = await c.post("/api/zones", json=zone)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def make_quest(node: Node, zone_id: str, territory: str = "dk", **over: object) -> dict[str, object]:
    body = {
        "title": "Beach clean-up",
        "description": "Fill a bag with litter from the beach.",
        "type": "daily",
        "category": "beach_cleanup",
        "zone_id": zone_id,
        "base_xp": 50,
        "base_tokens": 10,
        "difficulty": 2,
        **over,
    }
    async with node.client(territory) as c:
        r = await c.post("/api/quests", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


async def test_operator_creates_quest_player_cannot(node: Node) -> None:
    zone = await make_zone(node, AMAGER)
    quest = await make_quest(node, zone)
    assert quest["my_status"] == "available" and quest["max_completions"] == 1
    _, headers = player(node)
    async with node.client("dk", headers) as c:
        r = await c.post(
            "/api/quests",
            json={
                **{k: quest[k] for k in ("title", "type", "category")},
                "zone_id": zone,
                "base_xp": 1,
                "base_tokens": 1,
                "difficulty": 1,
            },
        )
        assert r.status_code == 403, r.text
        got = await c.get(f"/api/quests/{quest['id']}")
        assert got.status_code == 200 and got.json()["title"] == "Beach clean-up"


@pytest.mark.parametrize(
    "change, status, words",
    [
        ({"zone_id": str(uuid.uuid4())}, 400, "does not exist"),
        ({"difficulty": 6}, 400, "difficulty"),
        ({"type": "weekly"}, 400, "type"),
        ({"base_tokens": -1}, 400, "base_tokens"),
        ({"category": "Bad Category!"}, 400, "category"),
        ({"starts_at": "2026-06-02T10:00:00Z", "ends_at": "2026-06-01T10:00:00Z"}, 400, "ends_at"),
        ({"starts_at": "2026-06-02T10:00:00"}, 400, "time zone"),
    ],
)
async def test_bad_quest_is_refused_and_nothing_written(
    node: Node, change: dict[str, object], status: int, words: str
) -> None:
    zone = await make_zone(node, {**AMAGER, "name": f"z-{uuid.uuid4().hex[:6]}"})
    body = {
        "title": "t",
        "type": "daily",
        "category": "trees",
        "zone_id": zone,
        "base_xp": 1,
        "base_tokens": 1,
        "difficulty": 1,
        **change,
    }
    async with node.client("dk") as c:
        r = await c.post("/api/quests", json=body)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]
        listed = await c.get("/api/quests", params={"zone_id": zone, "include_closed": "true"})
        assert listed.json()["items"] == []


async def test_quests_near_a_point_nearest_first_and_paginated(node: Node) -> None:
    near_zone = await make_zone(node, {**AMAGER, "name": "near"})
    far_zone = await make_zone(node, {**AARHUS, "name": "far"})
    near = [await make_quest(node, near_zone, title=f"near {i}") for i in range(3)]
    far = await make_quest(node, far_zone, title="far")
    _, headers = player(node)
    point = {"lat": 55.6600, "lng": 12.6400}
    async with node.client("dk", headers) as c:
        r = await c.get("/api/quests", params={**point, "radius_km": 5})
        ids = [q["id"] for q in r.json()["items"]]
        assert {q["id"] for q in near} <= set(ids) and far["id"] not in ids
        wide = await c.get("/api/quests", params={**point, "radius_km": 300, "limit": 200})
        items = wide.json()["items"]
        distances = [q["distance_m"] for q in items]
        assert distances == sorted(distances)
        assert [q["id"] for q in items].index(far["id"]) > max([q["id"] for q in items].index(q["id"]) for q in near)
        far_item = next(q for q in items if q["id"] == far["id"])
        assert 150_000 < far_item["distance_m"] < 175_000  # Copenhagen - Aarhus centre, ~157 km
        # Walk the same list two at a time: same order, nothing twice.
        walked, cursor = [], None
        while True:
            params = {**point, "radius_km": 300, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await c.get("/api/quests", params=params)).json()
            walked += [q["id"] for q in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == [q["id"] for q in items]
        in_zone = await c.get("/api/quests", params={"zone_id": far_zone})
        assert [q["id"] for q in in_zone.json()["items"]] == [far["id"]]
        assert (await c.get("/api/quests", params={"lat": 55.0})).status_code == 400


async def test_start_is_idempotent_and_history_shows_it(node: Node) -> None:
    zone = await make_zone(node, {**AMAGER, "name": "start"})
    quest = await make_quest(node, zone, max_completions=2)
    _, headers = player(node)
    async with node.client("dk", headers) as c:
        first = await c.post(f"/api/quests/{quest['id']}/start")
        assert first.status_code == 201, first.text
        again = await c.post(f"/api/quests/{quest['id']}/start")
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        shown = (await c.get(f"/api/quests/{quest['id']}")).json()
        assert shown["my_status"] == "active" and shown["my_completions"] == 0
        hist = (await c.get("/api/quests/history")).json()["items"]
        assert [h["id"] for h in hist] == [first.json()["id"]]
        assert hist[0]["quest_title"] == "Beach clean-up" and hist[0]["status"] == "active"
        missing = await c.post(f"/api/quests/{uuid.uuid4()}/start")
        assert missing.status_code == 404


async def test_quest_window_is_enforced(node: Node) -> None:
    zone = await make_zone(node, {**AMAGER, "name": "window"})
    now = datetime.now(UTC)
    later = await make_quest(node, zone, starts_at=(now + timedelta(days=1)).isoformat())
    over = await make_quest(
        node, zone, starts_at=(now - timedelta(days=2)).isoformat(), ends_at=(now - timedelta(days=1)).isoformat()
    )
    _, headers = player(node)
    async with node.client("dk", headers) as c:
        r = await c.post(f"/api/quests/{later['id']}/start")
        assert r.status_code == 409 and "opens at" in r.json()["detail"]
        r = await c.post(f"/api/quests/{over['id']}/start")
        assert r.status_code == 409 and "closed at" in r.json()["detail"]
        open_ids = [q["id"] for q in (await c.get("/api/quests", params={"zone_id": zone})).json()["items"]]
        assert later["id"] not in open_ids and over["id"] not in open_ids
        all_ids = [
            q["id"]
            for q in (await c.get("/api/quests", params={"zone_id": zone, "include_closed": "true"})).json()["items"]
        ]
        assert later["id"] in all_ids and over["id"] in all_ids


async def test_quests_of_another_territory_are_not_visible(node: Node) -> None:
    zone = await make_zone(node, {**AMAGER, "name": "iso"})
    quest = await make_quest(node, zone)
    _, sami_headers = player(node, "sami")
    async with node.client(None, sami_headers) as c:
        assert (await c.get(f"/api/quests/{quest['id']}")).status_code == 404  # their own territory: no such quest
        r = await c.get(f"/api/quests/{quest['id']}", headers={"X-Territory": "dk"})
        assert r.status_code == 403
