"""The rewards marketplace: operators list rewards; players redeem them by burning tokens, with
stock and balance checked atomically, also under 100 concurrent buyers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa

from core.routing import Router
from services.ledger import service as ledger
from services.ledger.models import balances, ledger_entries
from services.rewards.models import redemptions, rewards
from tests.conftest import Env, Node, rows
from tests.test_tokens import balance_of, funded_player, headers, new_territory

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def make_reward(node: Node, code: str, **over: object) -> dict[str, object]:
    body = {"title": "Ferry ticket", "description": "One ride", "price": 25, "stock": 10, **over}
    async with node.client() as c:
        r = await c.post("/api/rewards", json=body, headers=headers(node, code, uuid.uuid4(), "operator"))
        assert r.status_code == 201, r.text
        return dict(r.json())


async def reward_stock(router: Router, code: str, reward_id: object) -> int:
    async with router.read(await router.lookup(code)) as conn:
        return int((await conn.execute(sa.select(rewards.c.stock).where(rewards.c.id == reward_id))).scalar_one())


async def reconcile(router: Router, env: Env, code: str) -> dict[str, int]:
    """Balances agree with the entries, sum to zero, none below zero but mint; ledger verify passes."""
    async with router.read(await router.lookup(code)) as conn:
        held = {r.account: r.tokens for r in await conn.execute(sa.select(balances.c.account, balances.c.tokens))}
        moved: Counter[str] = Counter()
        E = ledger_entries
        for e in await conn.execute(sa.select(E.c.debit, E.c.credit, E.c.amount)):
            moved[e.debit] -= e.amount
            moved[e.credit] += e.amount
    assert sum(held.values()) == 0
    assert all(tokens >= 0 for account, tokens in held.items() if account != "mint")
    assert {a: t for a, t in held.items() if t} == {a: t for a, t in moved.items() if t}
    assert env.cli("ledger", "verify", code).returncode == 0
    return held


async def test_operators_manage_rewards_players_cannot(node: Node, router: Router) -> None:
    code = await new_territory(router)
    made = [await make_reward(node, code, title=f"Reward {i}", stock=i) for i in range(3)]
    player = headers(node, code, uuid.uuid4())
    operator = headers(node, code, uuid.uuid4(), "operator")
    async with node.client() as c:
        r = await c.post("/api/rewards", json={"title": "x", "price": 1, "stock": 1}, headers=player)
        assert r.status_code == 403
        for bad in ({"title": "x", "price": 0, "stock": 1}, {"title": "x", "price": 1, "stock": -1}, {"price": 1}):
            r = await c.post("/api/rewards", json={"stock": 1, **bad}, headers=operator)
            assert r.status_code == 400, bad

        r = await c.get("/api/rewards", params={"limit": 2}, headers=player)
        page = r.json()
        assert [i["title"] for i in page["items"]] == ["Reward 0", "Reward 1"] and page["next_cursor"]
        r = await c.get("/api/rewards", params={"limit": 2, "cursor": page["next_cursor"]}, headers=player)
        assert [i["title"] for i in r.json()["items"]] == ["Reward 2"] and r.json()["next_cursor"] is None

        first = made[0]["id"]
        r = await c.patch(f"/api/rewards/{first}", json={"add_stock": 5, "price": 7}, headers=player)
        assert r.status_code == 403
        r = await c.patch(f"/api/rewards/{first}", json={"add_stock": 5, "price": 7}, headers=operator)
        assert r.status_code == 200 and (r.json()["stock"], r.json()["price"]) == (5, 7)
        r = await c.patch(f"/api/rewards/{first}", json={"active": False}, headers=operator)
        assert r.status_code == 200 and r.json()["active"] is False
        r = await c.get("/api/rewards", headers=player)
        assert first not in [i["id"] for i in r.json()["items"]]
        r = await c.get("/api/rewards", params={"include_inactive": "true"}, headers=operator)
        assert first in [i["id"] for i in r.json()["items"]]
        r = await c.post(f"/api/rewards/{first}/redeem", headers=player)
        assert r.status_code == 409 and r.json()["error"] == "reward_inactive"
        r = await c.get(f"/api/rewards/{uuid.uuid4()}", headers=player)
        assert r.status_code == 404
        r = await c.post(f"/api/rewards/{uuid.uuid4()}/redeem", headers=player)
        assert r.status_code == 404


async def test_redeem_burns_price_and_takes_stock(node: Node, router: Router, env: Env) -> None:
    code = await new_territory(router, "b")
    reward = await make_reward(node, code, price=40, stock=2)
    rich = await funded_player(router, code, 100)
    poor = await funded_player(router, code, 39)
    path = f"/api/rewards/{reward['id']}/redeem"
    async with node.client() as c:
        key = headers(node, code, rich, key=f"r-{uuid.uuid4()}")
        first = await c.post(path, headers=key)
        assert first.status_code == 201, first.text
        again = await c.post(path, headers=key)
        assert again.status_code == 201 and again.json() == first.json()  # one purchase, replayed
        done = first.json()
        assert (done["price"], done["status"], done["player_id"]) == (40, "redeemed", str(rich))

        r = await c.post(path, headers=headers(node, code, poor))
        assert r.status_code == 409 and r.json()["error"] == "insufficient_funds"
        assert await reward_stock(router, code, reward["id"]) == 1  # untouched by the refusal

        assert (await c.post(path, headers=headers(node, code, rich))).status_code == 201
        r = await c.post(path, headers=headers(node, code, rich))
        assert r.status_code == 409 and r.json()["error"] == "out_of_stock"

        r = await c.get("/api/rewards/redemptions", headers=headers(node, code, rich))
        assert r.status_code == 200 and len(r.json()["items"]) == 2
        assert r.json()["items"][-1] == done  # newest first

    assert await balance_of(router, code, f"player:{rich}") == 20
    assert await balance_of(router, code, f"player:{poor}") == 39
    async with router.read(await router.lookup(code)) as conn:
        entry = (await conn.execute(sa.select(ledger_entries).where(ledger_entries.c.seq == done["seq"]))).one()
    assert (entry.kind, entry.debit, entry.credit, entry.amount) == ("burn", f"player:{rich}", "burn", 40)
    assert (entry.ref_type, entry.ref_id) == ("redemption", done["id"])
    events = rows(env.dsn_b, f"SELECT envelope->'data' FROM territory_{code}.outbox WHERE type = 'reward.redeemed'")
    assert len(events) == 2 and events[0][0]["redemption_id"] == done["id"]
    await reconcile(router, env, code)


async def test_100_concurrent_redemptions_of_10_units(node: Node, router: Router, env: Env) -> None:
    code = await new_territory(router)
    price, stock, buyers = 25, 10, 100
    reward = await make_reward(node, code, price=price, stock=stock)
    players = await asyncio.gather(*(funded_player(router, code, 3 * price) for _ in range(buyers)))
    path = f"/api/rewards/{reward['id']}/redeem"
    limits = httpx.Limits(max_connections=buyers, max_keepalive_connections=buyers)
    async with httpx.AsyncClient(base_url=node.url, timeout=60, limits=limits) as c:
        auth = [headers(node, code, p) for p in players]
        await c.get("/api/rewards", headers=auth[0])  # warm the node's registry cache
        started = time.perf_counter()
        answers = await asyncio.gather(*(c.post(path, headers=h) for h in auth))
        seconds = time.perf_counter() - started
    outcomes = Counter((r.status_code, r.json().get("error")) for r in answers)
    print(f"\n100 concurrent redemptions: {outcomes} in {seconds:.3f} s ({buyers / seconds:.0f} requests/s)")
    assert outcomes == {(201, None): stock, (409, "out_of_stock"): buyers - stock}

    assert await reward_stock(router, code, reward["id"]) == 0
    winners = {r.json()["player_id"] for r in answers if r.status_code == 201}
    async with router.read(await router.lookup(code)) as conn:
        bought = (await conn.execute(sa.select(redemptions.c.player_id, redemptions.c.seq))).all()
        burns, _ = await ledger.list_entries(conn, limit=100, kind="burn")
    assert {str(p) for p, _ in bought} == winners and len(bought) == stock
    assert sorted(s for _, s in bought) == [e.seq for e in burns]
    assert sum(e.amount for e in burns) == stock * price
    held = await reconcile(router, env, code)
    assert held["burn"] == stock * price
    for p in players:
        assert held[f"player:{p}"] == (2 if str(p) in winners else 3) * price


async def test_concurrent_redemptions_never_overdraw(node: Node, router: Router, env: Env) -> None:
    """Each of 20 players can pay once and tries twice at the same time: one of the two is refused
    by the ledger after the stock was taken, and that unit goes back."""
    code = await new_territory(router, "b")
    price = 30
    reward = await make_reward(node, code, price=price, stock=100)
    players = await asyncio.gather(*(funded_player(router, code, price) for _ in range(20)))
    path = f"/api/rewards/{reward['id']}/redeem"
    async with httpx.AsyncClient(base_url=node.url, timeout=60) as c:
        answers = await asyncio.gather(*(c.post(path, headers=headers(node, code, p)) for p in players for _ in "ab"))
    outcomes = Counter((r.status_code, r.json().get("error")) for r in answers)
    assert outcomes == {(201, None): 20, (409, "insufficient_funds"): 20}
    assert await reward_stock(router, code, reward["id"]) == 80
    held = await reconcile(router, env, code)
    assert all(held[f"player:{p}"] == 0 for p in players) and held["burn"] == 20 * price
