"""Leaderboards: XP from proof payouts in Redis sorted sets (all time, day, ISO week; territory and
zone), kept by the payout.made consumer, rebuilt from the ledger after Redis lost them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from devstack.redis import start_redis, stop_redis
from devstack.system import free_port

from core.codes import schema_for
from core.events.outbox import emit
from core.events.tables import inbox
from core.routing import Router
from core.settings import Settings
from services.leaderboards import keys, scores, service
from services.leaderboards.service import rebuild
from services.ledger import service as ledger
from services.players.service import ensure_player
from services.proofs.models import proofs
from services.quests.models import assignments, quests
from services.zones.models import zones
from territories.registry import Registry
from tests.conftest import Env, Node, Proc, eventually, rows

pytestmark = pytest.mark.asyncio(loop_scope="session")
NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Paid:
    seq: int
    player: uuid.UUID
    zone: uuid.UUID
    xp: int
    at: datetime


class World:
    """A territory with two zones, a quest in each, and named players."""

    def __init__(self, router: Router, code: str) -> None:
        self.router, self.code = router, code
        self.zones: list[uuid.UUID] = []
        self.quests: dict[uuid.UUID, uuid.UUID] = {}  # zone -> quest
        self.players: dict[str, uuid.UUID] = {}
        self.paid: list[Paid] = []

    @classmethod
    async def make(
        cls, router: Router, server: str = "a", names: tuple[str, ...] = ("Astrid", "Bjørn"), code: str | None = None
    ) -> World:
        """A new territory (or, with ``code``, the players and quests of one just recreated)."""
        if code is None:
            code = f"lb_{uuid.uuid4().hex[:10]}"
            await Registry(router, "test").create_territory(code, f"Leaderboard {code}", server)
        world = cls(router, code)
        async with router.transaction(await router.lookup(code)) as conn:
            for i in range(2):
                zone, quest = uuid.uuid4(), uuid.uuid4()
                await conn.execute(zones.insert().values(id=zone, name=f"Zone {i}", lat=55.0, lng=12.0, radius_m=900))
                await conn.execute(
                    quests.insert().values(
                        id=quest,
                        zone_id=zone,
                        title=f"Quest {i}",
                        description="",
                        type="daily",
                        category="beach_cleanup",
                        base_xp=10,
                        base_tokens=1,
                        difficulty=1,
                        max_completions=100,
                        created_by=uuid.uuid4(),
                    )
                )
                world.zones.append(zone)
                world.quests[zone] = quest
            for name in names:
                world.players[name] = uuid.uuid4()
                await ensure_player(conn, world.players[name], name)
        return world

    async def pay(self, name: str, zone: int, xp: int, at: datetime = NOW, *, conn: Any = None) -> Paid:
        """What the impact service does for an approved proof: a proof mint and ``payout.made``."""
        if conn is None:
            async with self.router.transaction(await self.router.lookup(self.code)) as conn:
                return await self.pay(name, zone, xp, at, conn=conn)
        player, zone_id = self.players[name], self.zones[zone]
        quest, assignment, proof = self.quests[zone_id], uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            assignments.insert().values(id=assignment, quest_id=quest, player_id=player, status="completed")
        )
        await conn.execute(
            proofs.insert().values(
                id=proof,
                assignment_id=assignment,
                quest_id=quest,
                player_id=player,
                lat=55.0,
                lng=12.0,
                accuracy_m=5.0,
                captured_at=at,
                status="auto_approved",
            )
        )
        entry = await ledger.append(
            conn,
            self.code,
            kind="mint",
            debit="mint",
            credit=ledger.player_account(player),
            amount=3,
            xp=xp,
            ref_type="proof",
            ref_id=str(proof),
            clock=lambda: at,
        )
        data = {
            "proof_id": str(proof),
            "player_id": str(player),
            "quest_id": str(quest),
            "zone_id": str(zone_id),
            "category": "beach_cleanup",
            "xp": xp,
            "tokens": 3,
            "seq": entry.seq,
            "source": "auto_approved",
        }
        await emit(conn, "payout.made", data)
        paid = Paid(entry.seq, player, zone_id, xp, at)
        self.paid.append(paid)
        return paid

    def expected(self, period: str = "all", zone: uuid.UUID | None = None, on: datetime = NOW) -> list[tuple[str, int]]:
        """The board computed here from the payouts: XP per player, highest first (ties: higher id)."""
        same = {
            "all": lambda at: True,
            "day": lambda at: at.date() == on.date(),
            "week": lambda at: at.isocalendar()[:2] == on.isocalendar()[:2],
        }[period]
        totals: dict[str, int] = {}
        for p in self.paid:
            if same(p.at) and zone in (None, p.zone):
                totals[str(p.player)] = totals.get(str(p.player), 0) + p.xp
        return sorted(totals.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


async def dump(r: aioredis.Redis, ns: str) -> dict[str, Any]:
    """Everything Redis holds for a territory's leaderboards (namespace ``ns``), with absolute expiry times."""
    out: dict[str, Any] = {}
    async for raw in r.scan_iter(match=f"{ns}:*", count=1000):
        key = raw.decode()
        kind = (await r.type(key)).decode()
        if kind == "zset":
            value: Any = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(await r.smembers(key))
        else:
            value = await r.get(key)
        out[key] = (kind, value, await r.expiretime(key))
    return out


async def ledger_id(router: Router, code: str) -> str:
    async with router.read(await router.lookup(code)) as conn:
        return keys.ledger_id(await ledger.genesis_hash(conn))


def board(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(i["player_id"], i["xp"]) for i in items]


async def test_payouts_rank_players_by_period_and_zone(node: Node, router: Router, env: Env, worker: Proc) -> None:
    world = await World.make(router, names=("Astrid", "Bjørn", "Cecilie"))
    z0, z1 = world.zones
    await world.pay("Astrid", 0, 50)
    await world.pay("Bjørn", 1, 30)
    await world.pay("Bjørn", 0, 40)
    await world.pay("Cecilie", 0, 20)
    await world.pay("Cecilie", 1, 100, NOW - timedelta(days=1))
    astrid = world.players["Astrid"]
    auth = node.auth(home=world.code, roles={world.code: ["player"]}, user_id=astrid)

    async with node.client(world.code, auth) as c:

        async def get(**params: Any) -> dict[str, Any]:
            r = await c.get("/api/leaderboard", params=params)
            assert r.status_code == 200, r.text
            return dict(r.json())

        async def settled() -> bool:
            return board((await get())["items"]) == world.expected()

        await eventually(settled, timeout=60)
        top = await get()
        assert [(i["rank"], i["display_name"], i["xp"]) for i in top["items"]] == [
            (1, "Cecilie", 120),
            (2, "Bjørn", 70),
            (3, "Astrid", 50),
        ]
        assert top["me"] == {"rank": 3, "player_id": str(astrid), "display_name": "Astrid", "xp": 50}
        assert (top["period"], top["key"], top["zone_id"]) == ("all", "all", None)

        zone = await get(zone_id=str(z0))
        assert board(zone["items"]) == world.expected(zone=z0) and zone["me"]["rank"] == 1
        today = await get(period="day", on=str(NOW.date()))
        assert board(today["items"]) == world.expected("day") and today["key"] == f"day:{NOW.date()}"
        week = await get(period="week", zone_id=str(z1), on=str(NOW.date()))
        assert board(week["items"]) == world.expected("week", z1)
        yesterday = await get(period="day", on=str((NOW - timedelta(days=1)).date()), zone_id=str(z1))
        assert board(yesterday["items"]) == world.expected("day", z1, NOW - timedelta(days=1))
        assert yesterday["me"] is None  # Astrid earned nothing there that day
        assert len((await get(limit=1))["items"]) == 1
        empty = await get(zone_id=str(uuid.uuid4()))
        assert empty["items"] == [] and empty["me"] is None
        for bad in ({"period": "year"}, {"limit": 0}, {"limit": 201}, {"zone_id": "x"}, {"on": "2026-13-01"}):
            assert (await c.get("/api/leaderboard", params=bad)).status_code == 400, bad

        # The same payout announced twice (a second event for the same ledger entry) counts once.
        async with router.transaction(await router.lookup(world.code)) as conn:
            again = await emit(conn, "payout.made", {**_payout_data(world, world.paid[0])})

        async def handled() -> bool:
            async with router.read(await router.lookup(world.code)) as conn:
                q = sa.select(inbox.c.event_id).where(inbox.c.consumer == "leaderboards", inbox.c.event_id == again.id)
                return (await conn.execute(q)).first() is not None

        await eventually(handled, timeout=30)
        assert board((await get())["items"]) == world.expected()


def _payout_data(world: World, p: Paid) -> dict[str, Any]:
    return {
        "proof_id": str(uuid.uuid4()),
        "player_id": str(p.player),
        "quest_id": str(world.quests[p.zone]),
        "zone_id": str(p.zone),
        "category": "beach_cleanup",
        "xp": p.xp,
        "tokens": 3,
        "seq": p.seq,
        "source": "validated",
    }


async def test_rebuild_after_flushall_equals_the_boards_before(router: Router, env: Env, tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    url = start_redis(folder, free_port())  # our own redis-server: FLUSHALL never touches the shared one
    worker = Proc(env, ["worker"], tmp_path / "worker.log", OH_REDIS_URL=url).start()
    r = aioredis.from_url(url)
    try:
        world = await World.make(router, "b", names=("Aino", "Biret", "Ánde", "Elle"))
        days = [NOW, NOW - timedelta(days=1), NOW - timedelta(days=9), NOW - timedelta(days=30)]
        for i in range(24):
            await world.pay(("Aino", "Biret", "Ánde", "Elle")[i % 4], i % 2, 5 + 7 * i, days[i % 5 % 4])

        ns = keys.prefix(env.settings, world.code)  # the worker's: same data dir, same node id

        async def counted() -> bool:
            return await r.bitcount(keys.applied(ns)) == len(world.paid)

        await eventually(counted, timeout=60)
        before = await dump(r, ns)
        all_time = keys.board(ns, "all", "all")
        assert [(m.decode(), int(s)) for m, s in await r.zrevrange(all_time, 0, -1, withscores=True)] == (
            world.expected()
        )
        # Day boards are dropped 7 days after their day, week boards 5 weeks after their week.
        old_day = keys.board(ns, "all", keys.period_name("day", days[3].date()))
        old_week = keys.board(ns, "all", keys.period_name("week", days[3].date()))
        assert old_day not in before and old_week in before and before[all_time][2] == -1

        await r.flushall()
        assert await r.dbsize() == 0
        out = env.cli("leaderboard", "rebuild", world.code, OH_REDIS_URL=url).stdout
        assert f"{len(world.paid)} payouts" in out, out
        after = await dump(r, ns)
        assert after == before
        assert not [k for k in await r.keys("*") if b":rebuild:" in k]  # nothing staged left behind
    finally:
        worker.kill()
        await r.aclose()
        stop_redis(folder)


class GatedRedis:
    """A Redis client whose pipelines wait for ``gate``: holds a rebuild between its snapshot and
    its swap, so the test can commit and count a payout in that window."""

    def __init__(self, inner: aioredis.Redis, gate: asyncio.Event) -> None:
        self.inner, self.gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def pipeline(self, **kw: Any) -> Any:
        pipe, gate = self.inner.pipeline(**kw), self.gate

        class Waiting:
            async def __aenter__(self) -> Any:
                await gate.wait()
                return await pipe.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                return await pipe.__aexit__(*exc)

        return Waiting()


async def test_rebuild_counts_a_payout_racing_it_exactly_once(router: Router, env: Env) -> None:
    """A payout committed after the rebuild's snapshot, and counted by the consumer before the swap,
    is dropped with the old boards and counted again by the catch-up: once in the end."""
    r = aioredis.from_url(env.settings.redis.url)
    world = await World.make(router)
    for i in range(5):
        await world.pay(("Astrid", "Bjørn")[i % 2], i % 2, 10 + i)
    settings = env.settings
    ns = keys.prefix(settings, world.code)
    await rebuild(router, r, world.code, settings)  # the boards mirror this ledger (as the consumer leaves them)
    mirrored = await ledger_id(router, world.code)
    snapshot_taken, swap_allowed = asyncio.Event(), asyncio.Event()
    async with router.transaction(await router.lookup(world.code)) as conn:
        late = await world.pay("Astrid", 1, 1000, conn=conn)  # not committed yet: outside the snapshot
        gated: Any = GatedRedis(r, swap_allowed)
        task = asyncio.create_task(
            rebuild(router, gated, world.code, settings, progress=lambda *_: snapshot_taken.set())
        )
        await snapshot_taken.wait()
    # Committed now. The consumer counts it on the old boards before the swap...
    targets = keys.targets(ns, late.zone, late.at, settings, NOW.timestamp())
    assert await scores.apply(r, ns, late.seq, str(late.player), late.xp, targets, ledger=mirrored)
    swap_allowed.set()
    report = await task
    assert (report.payouts, report.caught_up, report.upto) == (5, 1, late.seq - 1)
    all_time = keys.board(ns, "all", "all")
    got = [(m.decode(), int(s)) for m, s in await r.zrevrange(all_time, 0, -1, withscores=True)]
    assert got == world.expected()  # ...and after the swap it still counts once
    assert not await scores.apply(r, ns, late.seq, str(late.player), late.xp, targets, ledger=mirrored)  # a redelivery
    zone = keys.board(ns, keys.scope_of(late.zone), "all")
    assert int(await r.zscore(zone, str(late.player)) or 0) == sum(
        p.xp for p in world.paid if p.player == late.player and p.zone == late.zone
    )
    await r.aclose()


# --- Redis state tied to the node and to the ledger it mirrors ------------------------------------
async def recreate(router: Router, env: Env, code: str) -> None:
    """Drop the territory's schema and provision it again (server a): a new, empty ledger under
    the same code, as on a node whose database was recreated, or another node's database."""
    rows(env.dsn_a, f'DROP SCHEMA "{schema_for(code)}" CASCADE')
    rows(env.dsn_a, "UPDATE global.territories SET status = 'provisioning' WHERE code = %s", code)
    router.invalidate(code)
    await Registry(router, "test").create_territory(code, f"Leaderboard {code}", "a")


async def count(router: Router, r: aioredis.Redis, code: str, seq: int, settings: Settings) -> bool:
    """What the payout.made consumer does for ledger entry ``seq`` (in its own transaction)."""
    async with router.transaction(await router.lookup(code)) as conn:
        return await service.count_payout(conn, r, seq, settings)


async def top(r: aioredis.Redis, settings: Settings, code: str, scope: str = "all") -> list[tuple[str, int]]:
    key = keys.board(keys.prefix(settings, code), scope, "all")
    found: Any = await r.zrevrange(key, 0, -1, withscores=True)
    return [(m.decode(), int(s)) for m, s in found]


async def test_a_fresh_node_beside_an_earlier_one_on_the_same_redis(router: Router, env: Env, tmp_path: Path) -> None:
    """Two nodes (two data dirs, so two node ids) with their own ledgers of one territory code
    and one Redis: each counts its own payouts, though their sequence numbers are the same."""
    r = aioredis.from_url(env.settings.redis.url)
    earlier_node = env.settings.model_copy(update={"data_dir": tmp_path / "earlier"})
    fresh_node = env.settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    earlier = await World.make(router, names=("Astrid",))
    code = earlier.code
    assert keys.prefix(earlier_node, code) != keys.prefix(fresh_node, code)
    assert keys.prefix(earlier_node, code) == keys.prefix(earlier_node.model_copy(), code)  # kept in node-id
    paid = await earlier.pay("Astrid", 0, 40)
    assert await count(router, r, code, paid.seq, earlier_node)

    await recreate(router, env, code)  # the fresh node's own database: its ledger starts again at 1
    fresh = await World.make(router, names=("Bjørn",), code=code)
    new = await fresh.pay("Bjørn", 1, 25)
    assert new.seq == paid.seq == 1
    assert await count(router, r, code, new.seq, fresh_node)
    assert await top(r, fresh_node, code) == fresh.expected() == [(str(fresh.players["Bjørn"]), 25)]
    assert await top(r, fresh_node, code, keys.scope_of(new.zone)) == [(str(fresh.players["Bjørn"]), 25)]
    assert await top(r, earlier_node, code) == [(str(earlier.players["Astrid"]), 40)]  # untouched
    await r.aclose()


async def test_boards_of_a_recreated_ledger_are_rebuilt_by_the_consumer(router: Router, env: Env) -> None:
    """Boards that mirror a ledger since dropped (the territory recreated, the database
    restored) are recounted from the ledger there is now, before the next payout is counted."""
    r = aioredis.from_url(env.settings.redis.url)
    settings = env.settings
    world = await World.make(router, names=("Astrid", "Bjørn"))
    code = world.code
    for name, zone, xp in (("Astrid", 0, 40), ("Bjørn", 1, 10), ("Astrid", 1, 5)):
        p = await world.pay(name, zone, xp)
        assert await count(router, r, code, p.seq, settings)
    assert await top(r, settings, code) == world.expected()
    assert not await count(router, r, code, world.paid[0].seq, settings)  # a redelivery counts once

    await recreate(router, env, code)
    again = await World.make(router, names=("Cecilie",), code=code)
    first = await again.pay("Cecilie", 0, 7)
    second = await again.pay("Cecilie", 0, 3)  # committed, its event not handled yet
    assert (first.seq, second.seq) == (1, 2)
    assert await count(router, r, code, first.seq, settings)  # rebuilt: counts both
    assert await top(r, settings, code) == again.expected() == [(str(again.players["Cecilie"]), 10)]
    assert not await count(router, r, code, second.seq, settings)  # already counted by the rebuild
    assert await top(r, settings, code) == [(str(again.players["Cecilie"]), 10)]
    ns = keys.prefix(settings, code)
    assert await r.bitcount(keys.applied(ns)) == 2
    async with router.read(await router.lookup(code)) as conn:
        mirrored: Any = await r.get(keys.ledger(ns))
        assert mirrored.decode() == keys.ledger_id(await ledger.genesis_hash(conn))
    await r.aclose()
