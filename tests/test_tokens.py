"""Tokens: balances, player-to-player transfers (Idempotency-Key), sponsors' contributions to the
territory pool and to the federated global pool."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from core.routing import Router
from services.ledger import service as ledger
from services.ledger.models import ledger_entries
from services.players.service import ensure_player
from territories.registry import Registry
from tests.conftest import Env, Node, rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def new_territory(router: Router, server: str = "a") -> str:
    code = f"tk_{uuid.uuid4().hex[:10]}"
    await Registry(router, "test").create_territory(code, f"Tokens {code}", server)
    return code


async def funded_player(router: Router, code: str, tokens: int, name: str | None = None) -> uuid.UUID:
    """A player of ``code`` holding ``tokens`` (minted as if paid for a proof)."""
    user = uuid.uuid4()
    async with router.transaction(await router.lookup(code)) as conn:
        await ensure_player(conn, user, name)
        if tokens:
            await ledger.append(
                conn,
                code,
                kind="mint",
                debit="mint",
                credit=ledger.player_account(user),
                amount=tokens,
                xp=5,
                ref_type="proof",
                ref_id=str(uuid.uuid4()),
            )
    return user


def headers(node: Node, code: str, user: uuid.UUID, *roles: str, key: str | None = None) -> dict[str, str]:
    out = {**node.auth(home=code, roles={code: list(roles or ("player",))}, user_id=user), "X-Territory": code}
    if key is not None:
        out["Idempotency-Key"] = key
    return out


async def balance_of(router: Router, code: str, account: str) -> int:
    async with router.read(await router.lookup(code)) as conn:
        tokens, _ = await ledger.get_balance(conn, account)
    return tokens


async def test_transfer_moves_tokens_once_per_key(node: Node, router: Router, env: Env) -> None:
    code = await new_territory(router)
    alice = await funded_player(router, code, 100)
    bob = await funded_player(router, code, 0)
    async with node.client() as c:
        r = await c.get("/api/tokens/balance", headers=headers(node, code, alice))
        assert r.status_code == 200, r.text
        assert r.json() == {"account": f"player:{alice}", "tokens": 100, "xp": 5}

        body = {"to_player": str(bob), "amount": 30, "memo": "for the bus"}
        r = await c.post("/api/tokens/transfer", json=body, headers=headers(node, code, alice))
        assert r.status_code == 400 and "Idempotency-Key" in r.text  # the key is required

        key = f"tr-{uuid.uuid4()}"
        first = await c.post("/api/tokens/transfer", json=body, headers=headers(node, code, alice, key=key))
        assert first.status_code == 201, first.text
        sent = first.json()
        assert sent["amount"] == 30 and sent["balance"] == 70 and sent["to_player"] == str(bob)
        again = await c.post("/api/tokens/transfer", json=body, headers=headers(node, code, alice, key=key))
        assert again.status_code == 201 and again.json() == sent  # replayed, not sent twice
        other = await c.post(
            "/api/tokens/transfer", json={**body, "amount": 31}, headers=headers(node, code, alice, key=key)
        )
        assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"

        def post(data: dict[str, object]):  # type: ignore[no-untyped-def]
            return c.post("/api/tokens/transfer", json=data, headers=headers(node, code, alice, key=uuid.uuid4().hex))

        for bad, why in (
            ({**body, "amount": 0}, "amount"),
            ({**body, "amount": -5}, "amount"),
            ({**body, "to_player": str(alice)}, "yourself"),
            ({**body, "to_player": str(uuid.uuid4())}, "has no player"),
            ({**body, "amount": env.settings.economy.token_transfer_max + 1}, "at most"),
            ({**body, "memo": ""}, "memo"),
        ):
            r = await post(bad)
            assert r.status_code == 400, (bad, r.text)
            assert why in r.text, (why, r.text)
        r = await post({**body, "amount": 71})
        assert r.status_code == 409 and r.json()["error"] == "insufficient_funds", r.text

        # A player reads only their own balance; operators and governments read any account.
        r = await c.get("/api/tokens/balance", params={"account": f"player:{alice}"}, headers=headers(node, code, bob))
        assert r.status_code == 403
        r = await c.get(
            "/api/tokens/balance",
            params={"account": f"player:{bob}"},
            headers=headers(node, code, uuid.uuid4(), "government"),
        )
        assert r.status_code == 200 and r.json()["tokens"] == 30
        r = await c.get("/api/tokens/balance", params={"account": "pool:x y"}, headers=headers(node, code, alice))
        assert r.status_code == 400

    assert await balance_of(router, code, f"player:{alice}") == 70
    assert await balance_of(router, code, f"player:{bob}") == 30
    async with router.read(await router.lookup(code)) as conn:
        entries, _ = await ledger.list_entries(conn, limit=10, kind="transfer")
    assert [(e.debit, e.credit, e.amount, e.memo) for e in entries] == [
        (f"player:{alice}", f"player:{bob}", 30, "for the bus")
    ]
    events = rows(
        env.dsn_a,
        f"SELECT envelope->'data' FROM territory_{code}.outbox WHERE type = 'tokens.transferred'",
    )
    assert [e[0] for e in events] == [
        {"from_player": str(alice), "to_player": str(bob), "amount": 30, "seq": entries[0].seq}
    ]


async def test_sponsor_contributions_mint_into_pools(node: Node, router: Router, env: Env) -> None:
    here, there = await new_territory(router, "a"), await new_territory(router, "b")
    sponsor = uuid.uuid4()
    async with node.client() as c:
        h = headers(node, here, sponsor, "sponsor")
        r = await c.post("/api/pools/territory/contributions", json={"amount": 500, "memo": "beach fund"}, headers=h)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["account"] == "pool:territory" and made["sponsor_id"] == str(sponsor) and made["amount"] == 500

        key = {**h, "Idempotency-Key": f"c-{uuid.uuid4()}"}
        g1 = await c.post("/api/pools/global/contributions", json={"amount": 200}, headers=key)
        g2 = await c.post("/api/pools/global/contributions", json={"amount": 200}, headers=key)
        assert g1.status_code == g2.status_code == 201 and g1.json() == g2.json()
        r = await c.post(
            "/api/pools/global/contributions",
            json={"amount": 300},
            headers=headers(node, there, sponsor, "sponsor"),
        )
        assert r.status_code == 201, r.text

        r = await c.post("/api/pools/global/contributions", json={"amount": 5}, headers=headers(node, here, sponsor))
        assert r.status_code == 403  # players do not fund pools
        for pool, amount in (
            ("nowhere", 5),
            ("territory", 0),
            ("territory", env.settings.economy.pool_contribution_max + 1),
        ):
            r = await c.post(f"/api/pools/{pool}/contributions", json={"amount": amount}, headers=h)
            assert r.status_code == 400, (pool, amount, r.text)

        r = await c.get("/api/pools", headers=headers(node, here, uuid.uuid4()))
        assert r.status_code == 200
        assert r.json() == {
            "territory": here,
            "items": [
                {"pool": "territory", "account": "pool:territory", "tokens": 500},
                {"pool": "global", "account": "pool:global", "tokens": 200},
            ],
        }
        r = await c.get("/api/pools/territory/contributions", headers=headers(node, here, uuid.uuid4()))
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [made["id"]]

        r = await c.get("/api/pools/global", headers=headers(node, here, uuid.uuid4()))
        assert r.status_code == 200, r.text
        total = r.json()
        shares = {s["territory"]: s["tokens"] for s in total["shares"]}
        assert shares[here] == 200 and shares[there] == 300  # two ledgers on two database servers
        assert total["tokens"] == sum(shares.values())
        # Other tests leave territories on servers that are gone; ours must not be among them.
        assert here not in total["unavailable"] and there not in total["unavailable"]
        assert total["territories"] >= 5

    # The ledger says who funded what: a mint into the pool naming the sponsor and the contribution.
    async with router.read(await router.lookup(here)) as conn:
        entry = (await conn.execute(sa.select(ledger_entries).where(ledger_entries.c.seq == made["seq"]))).one()
    assert (entry.kind, entry.debit, entry.credit, entry.amount) == ("mint", "mint", "pool:territory", 500)
    assert (entry.ref_type, entry.ref_id, entry.memo) == ("contribution", made["id"], f"sponsor:{sponsor} beach fund")
    assert rows(env.dsn_a, f"SELECT count(*) FROM territory_{here}.outbox WHERE type = 'pool.contributed'") == [(2,)]
    assert env.cli("ledger", "verify", here).returncode == 0
