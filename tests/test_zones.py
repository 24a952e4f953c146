"""Zones: validation at the edge, idempotent creation, pagination."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.conftest import Env, Node, rows

VALID = {"name": "Harbour", "lat": 55.68, "lng": 12.59, "radius_m": 500}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**VALID, "lat": 90.5}, "lat"),
        ({**VALID, "lat": -91}, "lat"),
        ({**VALID, "lng": 180.01}, "lng"),
        ({**VALID, "radius_m": 0}, "radius_m"),
        ({**VALID, "radius_m": -5}, "radius_m"),
        ({**VALID, "radius_m": 100_001}, "radius_m"),
        ({**VALID, "name": ""}, "name"),
        ({**VALID, "name": "   "}, "name"),
        ({**VALID, "name": "x" * 121}, "name"),
        ({**VALID, "lat": "north"}, "lat"),
        ({**VALID, "lat": None}, "lat"),
        ({k: v for k, v in VALID.items() if k != "radius_m"}, "radius_m"),
        ({**VALID, "owner": "me"}, "owner"),
    ],
)
async def test_invalid_zone_is_400_and_writes_nothing(env: Env, node: Node, payload: dict, field: str) -> None:
    before = rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones")
    pending = rows(env.dsn_a, "SELECT count(*) FROM territory_dk.outbox")
    async with node.client("dk") as c:
        r = await c.post("/api/zones", json=payload)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_request"
    assert field in body["detail"]
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones") == before
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.outbox") == pending


async def test_malformed_json_is_400(node: Node) -> None:
    async with node.client("dk") as c:
        r = await c.post("/api/zones", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] in ("invalid_request", "bad_request")


async def test_idempotency_key_replays_and_rejects_a_different_body(env: Env, node: Node) -> None:
    key = f"create-{uuid.uuid4()}"
    body = {**VALID, "name": f"Idem {key}"}
    async with node.client("dk", headers={"Idempotency-Key": key}) as c:
        answers = await asyncio.gather(*(c.post("/api/zones", json=body) for _ in range(5)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        other = await c.post("/api/zones", json={**body, "radius_m": 9})
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones WHERE name = %s", body["name"]) == [(1,)]
    events = rows(
        env.dsn_a, "SELECT count(*) FROM territory_dk.outbox WHERE envelope->'data'->>'name' = %s", body["name"]
    )
    assert events == [(1,)]


async def test_pagination_walks_every_zone_once(node: Node) -> None:
    async with node.client("sami") as c:
        for i in range(7):
            r = await c.post("/api/zones", json={**VALID, "name": f"page-{i}"})
            assert r.status_code == 201
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await c.get("/api/zones", params=params)).json()
            assert len(page["items"]) <= 3
            seen.extend(z["id"] for z in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = (await c.get("/api/zones", params={"limit": 200})).json()["items"]
        assert seen == [z["id"] for z in everything]
        assert len(seen) == len(set(seen)) >= 7
        bad = await c.get("/api/zones", params={"cursor": "!!not-a-cursor"})
        assert bad.status_code == 400
        assert (await c.get("/api/zones", params={"limit": 0})).status_code == 400
        assert (await c.get("/api/zones", params={"limit": 201})).status_code == 400
