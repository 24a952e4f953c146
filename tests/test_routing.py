"""Territory routing across two database servers, through the node's real HTTP API."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from core.routing import Router, Territory
from territories.registry import RegistryDirectory
from tests.conftest import ADMIN_TOKEN, Env, Node, rows


async def test_rows_land_in_their_territory_schema_on_their_server(env: Env, node: Node) -> None:
    async with node.client("sami") as sami, node.client("dk") as dk:
        r = await sami.post("/api/zones", json={"name": "Kautokeino", "lat": 69.01, "lng": 23.04, "radius_m": 2000})
        assert r.status_code == 201, r.text
        zone_id = r.json()["id"]
        assert (await dk.get("/api/zones")).json()["items"] == [] or all(
            z["id"] != zone_id for z in (await dk.get("/api/zones")).json()["items"]
        )
    # sami lives on server B: the row is there, in territory_sami, and nowhere on server A.
    assert rows(env.dsn_b, "SELECT name FROM territory_sami.zones WHERE id = %s", zone_id) == [("Kautokeino",)]
    assert rows(env.dsn_b, "SELECT count(*) FROM territory_ca.zones WHERE id = %s", zone_id) == [(0,)]
    on_a = rows(
        env.dsn_a,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'territory_sami'",
    )
    assert on_a == [(0,)]
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones WHERE id = %s", zone_id) == [(0,)]


async def test_1000_interleaved_requests_never_mix_territories(node: Node) -> None:
    territories = ["dk", "sami", "ca"]
    marks = {t: f"{t}-{random.randrange(10**9)}" for t in territories}
    clients = {t: node.client(t) for t in territories}
    try:
        # Each territory gets zones named after itself.
        for t in territories:
            for i in range(3):
                r = await clients[t].post(
                    "/api/zones", json={"name": f"{marks[t]}-{i}", "lat": 1.0, "lng": 2.0, "radius_m": 10}
                )
                assert r.status_code == 201
        order = [territories[i % 3] for i in range(1000)]
        random.shuffle(order)
        gate = asyncio.Semaphore(64)

        async def one(t: str) -> tuple[str, list[str]]:
            async with gate:
                r = await clients[t].get("/api/zones", params={"limit": 200})
                assert r.status_code == 200, r.text
                return t, [z["name"] for z in r.json()["items"]]

        results = await asyncio.gather(*(one(t) for t in order))
    finally:
        for c in clients.values():
            await c.aclose()
    assert len(results) == 1000
    for t, names in results:
        own = [n for n in names if n.startswith(marks[t])]
        assert len(own) == 3
        for other in territories:
            if other != t:
                assert not any(n.startswith(marks[other]) for n in names), (t, other)


@pytest.mark.parametrize(
    "code",
    ["x'; DROP TABLE zones; --", "DK", "1dk", "d", "dk;select", "territory_dk", "a" * 40, "global", "dk\u00e6"],
)
async def test_malformed_or_reserved_codes_are_rejected(env: Env, node: Node, code: str) -> None:
    before = rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones")
    async with node.client() as c:
        r = await c.post(
            "/api/zones",
            headers={"X-Territory": code.encode()},
            json={"name": "x", "lat": 1, "lng": 1, "radius_m": 1},
        )
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"] in ("invalid_request", "not_found")
    assert "detail" in r.json()
    if code != "territory_dk":
        assert r.status_code == 400
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.zones") == before


async def test_unknown_territory_is_404(node: Node) -> None:
    async with node.client("atlantis") as c:
        r = await c.get("/api/zones")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "unknown territory 'atlantis'"}


async def test_suspended_territory_is_423_and_resumes(env: Env, node: Node) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with node.client("ca") as c:
        assert (await c.get("/api/zones")).status_code == 200
        r = await c.post("/api/registry/territories/ca/suspend", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "suspended"
        before = rows(env.dsn_b, "SELECT count(*) FROM territory_ca.zones")
        r = await c.post("/api/zones", json={"name": "x", "lat": 1, "lng": 1, "radius_m": 1})
        assert r.status_code == 423
        assert r.json()["error"] == "territory_suspended"
        assert rows(env.dsn_b, "SELECT count(*) FROM territory_ca.zones") == before
        r = await c.post("/api/registry/territories/ca/resume", headers=admin)
        assert r.json()["status"] == "active"
        assert (await c.get("/api/zones")).status_code == 200


async def test_invalidation_during_a_lookup_is_not_undone(env: Env, router: Router) -> None:
    """A lookup that read the registry before a change must not cache its stale row after
    the change's invalidation arrived (it would then be served for the whole TTL)."""

    class SlowDirectory(RegistryDirectory):
        def __init__(self) -> None:
            super().__init__(env.settings)
            self.reading, self.release = asyncio.Event(), asyncio.Event()

        async def territory(self, conn: Any, code: str) -> Territory | None:
            territory = await super().territory(conn, code)  # reads "active"
            self.reading.set()
            await self.release.wait()
            return territory

    directory = SlowDirectory()

    class SlowRouter(Router):
        reading, release = directory.reading, directory.release

    slow = SlowRouter(env.settings.replace(registry={"cache_ttl": 300}), directory, router.registry)
    lookup = asyncio.create_task(slow.lookup("dk"))
    await slow.reading.wait()
    slow.invalidate("dk")  # e.g. territory.suspended arrives now
    slow.release.set()
    assert (await lookup).code == "dk"
    assert "dk" not in slow._cache
    slow.release.set()
    await slow.lookup("dk")
    assert "dk" in slow._cache  # an undisturbed lookup still caches
