"""Quests: operators create them in zones; players find them near a point, start them, see history."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.geo import coordinate, distance_sql, haversine_m
from core.pagination import encode_cursor
from core.routing import Router
from territories.registry import Registry
from tests.conftest import Env, Node, rows

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


async def new_territory(router: Router, server: str = "a") -> str:
    """A territory of its own, so what other tests stored cannot change what a test sees."""
    code = f"qst_{uuid.uuid4().hex[:8]}"
    await Registry(router, "test").create_territory(code, f"Quests {code}", server)
    return code


async def test_quests_near_a_point_nearest_first_and_paginated(node: Node, router: Router) -> None:
    # In a territory of its own: the zones and quests other tests leave in dk (many around
    # Amager, or a stored value the search trips on) must not decide what this test sees.
    code = await new_territory(router)
    near_zone = await make_zone(node, {**AMAGER, "name": "near"}, territory=code)
    far_zone = await make_zone(node, {**AARHUS, "name": "far"}, territory=code)
    near = [await make_quest(node, near_zone, territory=code, title=f"near {i}") for i in range(3)]
    far = await make_quest(node, far_zone, territory=code, title="far")
    _, headers = player(node, code)
    point = {"lat": 55.6600, "lng": 12.6400}
    async with node.client(code, headers) as c:
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


# Values inside the documented bounds that PostgreSQL's float arithmetic trips on (radians(5e-324)
# underflows), values below the kept precision, and what the API refuses but a database may hold.
SUBNORMAL = 5e-324
TINY = [SUBNORMAL, -SUBNORMAL, 2.2250738585072014e-308, 1e-200, -1e-300, 1e-8, -0.0]


async def test_a_subnormal_coordinate_is_kept_to_the_precision(node: Node, env: Env) -> None:
    async with node.client("dk") as c:
        for value in TINY:
            r = await c.post("/api/zones", json={"name": f"tiny {value!r}", "lat": value, "lng": value, "radius_m": 10})
            assert r.status_code == 201, r.text
            assert (r.json()["lat"], r.json()["lng"]) == (0.0, 0.0)
        kept = await c.post("/api/zones", json={**AMAGER, "lat": 55.659612345678, "lng": -12.64061234567})
        assert (kept.json()["lat"], kept.json()["lng"]) == (55.6596123, -12.6406123)
        stored = rows(env.dsn_a, "SELECT lat, lng FROM territory_dk.zones WHERE id = %s", kept.json()["id"])
        assert stored == [(55.6596123, -12.6406123)]
        for radius in (SUBNORMAL, 0.5):
            r = await c.post("/api/zones", json={**AMAGER, "radius_m": radius})
            assert r.status_code == 400 and "radius_m" in r.json()["detail"], r.text


async def test_stored_extreme_values_do_not_break_the_quest_search(node: Node, env: Env, router: Router) -> None:
    """Zones holding values the API no longer accepts (written before, or by hand; the table's
    checks allow them) must not make the near-point search fail: it answers 200, nearest first."""
    code = await new_territory(router)
    schema = f"territory_{code}"
    near_zone = await make_zone(node, {**AMAGER, "name": "near"}, territory=code)
    far_zone = await make_zone(node, {**AARHUS, "name": "far"}, territory=code)
    near = await make_quest(node, near_zone, territory=code, title="near")
    far = await make_quest(node, far_zone, territory=code, title="far")
    poison = [
        *[(v, v, 100.0) for v in TINY],
        (SUBNORMAL, 12.6406, 1500.0),  # on the equator below Amager
        (55.6596, SUBNORMAL, SUBNORMAL),
        (0.0, 0.0, SUBNORMAL),
        (0.0, 0.0, 100_000.0),
        (90.0, 180.0, 100_000.0),
        (-90.0, -180.0, 1.0),
        (89.99999999999999, 179.99999999999997, 1.0),
    ]
    stored = []
    for i, (lat, lng, radius) in enumerate(poison):
        zone = str(uuid.uuid4())
        rows(
            env.dsn_a,
            f"INSERT INTO {schema}.zones (id, name, lat, lng, radius_m) VALUES (%s, %s, %s, %s, %s)",
            zone,
            f"poison {i}",
            lat,
            lng,
            radius,
        )
        stored.append((await make_quest(node, zone, territory=code, title=f"poison {i}"))["id"])
    _, headers = player(node, code)
    async with node.client(code, headers) as c:
        for point in ({"lat": 55.66, "lng": 12.64}, {"lat": SUBNORMAL, "lng": -SUBNORMAL}, {"lat": 90, "lng": 180}):
            r = await c.get("/api/quests", params={**point, "radius_km": 500, "limit": 200})
            assert r.status_code == 200, (point, r.text)
            distances = [q["distance_m"] for q in r.json()["items"]]
            assert distances == sorted(distances) and all(d is not None for d in distances)
        r = await c.get("/api/quests", params={"lat": 55.66, "lng": 12.64, "radius_km": 300, "limit": 200})
        ids = [q["id"] for q in r.json()["items"]]
        assert ids[:2] == [near["id"], far["id"]], r.json()  # the poisoned zones are far from Denmark
        walked, cursor = [], None
        params = {"lat": SUBNORMAL, "lng": SUBNORMAL, "radius_km": 500, "limit": 3}
        while True:
            page = await c.get("/api/quests", params={**params, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            walked += [q["id"] for q in page.json()["items"]]
            if (cursor := page.json()["next_cursor"]) is None:
                break
        # Around (0, 0): the zones at 0 or below the precision, then the one on the equator
        # below Amager (~1405 km away) is not within 500 km; Denmark is not either.
        assert set(walked) >= set(stored[: len(TINY)]) | {stored[len(TINY) + 2]}
        assert near["id"] not in walked and far["id"] not in walked
        bad_points: list[dict[str, str | float]] = [
            {"lat": "nan", "lng": 1},
            {"lat": 1, "lng": "inf"},
            {"lat": 1, "lng": 1, "radius_km": SUBNORMAL},
        ]
        for bad in bad_points:
            assert (await c.get("/api/quests", params=bad)).status_code == 400, bad
        for key in ("nan", "inf", "-inf"):
            bad_cursor = await c.get("/api/quests", params={**params, "cursor": encode_cursor(key, str(uuid.uuid4()))})
            assert bad_cursor.status_code == 400, key


EXTREMES = [0.0, -0.0, *TINY, 1e-7, -1e-7, 1.5e-7, 45.0, 90.0, -90.0, 180.0, -180.0, 90.0000001, 1e308, -1e308]


async def test_the_distance_sql_never_raises_for_a_finite_value(router: Router) -> None:
    """Every pair of extreme stored coordinates against extreme query points: no error, NULL for
    a centre out of range (or not finite), else the Python haversine of the kept precision."""
    values = sa.values(sa.column("lat", sa.Float), sa.column("lng", sa.Float), name="v").data(
        [(lat, lng) for lat in [*EXTREMES, math.inf, math.nan] for lng in [*EXTREMES, -math.inf]]
    )
    async with (await router.engine("a")).connect() as conn:
        for lat, lng in [(0.0, 0.0), (SUBNORMAL, -SUBNORMAL), (90.0, 180.0), (-90.0, -180.0), (55.66, 12.64)]:
            got = await conn.execute(
                sa.select(values.c.lat, values.c.lng, distance_sql(values.c.lat, values.c.lng, lat, lng))
            )
            for zlat, zlng, distance in got:
                if math.isfinite(zlat) and math.isfinite(zlng) and abs(zlat) <= 90 and abs(zlng) <= 180:
                    clean = [x if abs(x) >= 1e-7 else 0.0 for x in (zlat, zlng)]
                    expected = haversine_m(coordinate(lat), coordinate(lng), *clean)
                    assert distance == pytest.approx(expected, abs=1.0), (zlat, zlng, lat, lng)
                else:
                    assert distance is None, (zlat, zlng, lat, lng)
