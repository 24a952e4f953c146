"""The territory ledger: chain, balances, guards, checkpoints, proofs, tamper detection, export."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from core.errors import InvalidInput
from core.events.envelope import validate
from core.routing import Router
from services.ledger import audit, merkle, service
from services.ledger.canonical import GENESIS, Entry, canonical, entry_hash
from services.ledger.keys import checkpoint_message, load_keys, parse_jwks, verify_signature
from services.ledger.service import InsufficientFunds, append, checkpoint, inclusion_proof, player_account
from territories.registry import Registry
from tests.conftest import Env, Node, Proc, eventually, rows

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1


async def new_territory(router: Router, server: str = "a") -> str:
    code = f"lg_{uuid.uuid4().hex[:10]}"
    await Registry(router, "test").create_territory(code, f"Ledger {code}", server)
    return code


def players(n: int) -> list[str]:
    return [player_account(uuid.uuid4()) for _ in range(n)]


async def fill(router: Router, code: str, n: int) -> list[Entry]:
    """``n`` entries: mints to three players, transfers between them, a burn now and then."""
    p = players(3)
    out = []
    async with router.transaction(await router.lookup(code)) as conn:
        for i in range(n):
            if i < 3 or i % 4 == 0:
                e = await append(
                    conn,
                    code,
                    kind="mint",
                    debit="mint",
                    credit=p[i % 3],
                    amount=100 + i,
                    xp=10 + i,
                    ref_type="proof",
                    ref_id=str(uuid.uuid4()),
                )
            elif i % 4 == 1:
                e = await append(conn, code, kind="transfer", debit=p[i % 3], credit=p[(i + 1) % 3], amount=7)
            elif i % 4 == 2:
                e = await append(conn, code, kind="burn", debit=p[i % 3], credit="burn", amount=3, memo="redeemed")
            else:
                e = await append(
                    conn,
                    code,
                    kind="transfer",
                    debit=p[i % 3],
                    credit="pool:territory",
                    amount=5,
                    ref_type="redemption",
                    ref_id=f"r-{i}",
                )
            out.append(e)
    return out


async def sign(router: Router, env: Env, code: str):  # type: ignore[no-untyped-def]
    async with router.transaction(await router.lookup(code)) as conn:
        return await checkpoint(conn, code, env.settings)


# --- pure parts -----------------------------------------------------------------------------------
def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's definition, written recursively, to check the iterative code against."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def test_merkle_proofs_match_rfc_6962_and_reject_wrong_input() -> None:
    leaves = [merkle.leaf_hash(bytes([i]) * 32) for i in range(40)]
    for n in range(1, 40):
        root = _mth(leaves[:n])
        assert merkle.root_of(leaves[:n]) == root
        for i in range(n):
            path = merkle.inclusion_proof(leaves, i, n)
            assert merkle.verify_inclusion(leaves[i], i, n, path, root)
            assert not merkle.verify_inclusion(leaves[(i + 1) % 40], i, n, path, root)
            if path:
                assert not merkle.verify_inclusion(leaves[i], i, n, path[:-1], root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(leaves, m, n)
            assert merkle.verify_consistency(m, n, _mth(leaves[:m]), root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, _mth(leaves[1 : m + 1]), root, proof)
                assert not merkle.verify_consistency(m, n, _mth(leaves[:m]), root, proof[1:])


def test_merkle_known_answer_from_rfc_6962_test_vectors() -> None:
    # Certificate Transparency's reference vectors (leaves "", 0x00, 0x10, 0x2021, ...).
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", b"\x50\x51\x52\x53\x54\x55\x56\x57"]
    data.append(b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f")
    leaves = [merkle.leaf_hash(d) for d in data]
    assert merkle.root_of(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle.root_of(leaves[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_canonical_encoding_is_stable_json() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    e = Entry(1, "mint", "mint", "pool:territory", 5, 0, None, None, 'a "q"\n\u00e6\u2028\x01', at, GENESIS, b"")
    raw = canonical("dk", e)
    assert raw == (
        b'{"amount":5,"created_at":"2026-01-02T03:04:05.000006Z","credit":"pool:territory","debit":"mint",'
        b'"kind":"mint","memo":"a \\"q\\"\\n\xc3\xa6\xe2\x80\xa8\\u0001","ref_id":null,"ref_type":null,"seq":1,'
        b'"territory":"dk","xp":0}'
    )
    assert json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == raw
    assert entry_hash("dk", e) == hashlib.sha256(GENESIS + raw).digest()
    assert entry_hash("sami", e) != entry_hash("dk", e)  # bound to its territory


# --- appending ------------------------------------------------------------------------------------
async def test_append_chains_entries_and_moves_balances(router: Router) -> None:
    code = await new_territory(router)
    alice, bob = players(2)
    async with router.transaction(await router.lookup(code)) as conn:
        m = await append(
            conn, code, kind="mint", debit="mint", credit=alice, amount=50, xp=20, ref_type="proof", ref_id="p1"
        )
        t = await append(conn, code, kind="transfer", debit=alice, credit=bob, amount=30)
        b = await append(
            conn, code, kind="burn", debit=bob, credit="burn", amount=10, ref_type="redemption", ref_id="r1"
        )
    assert [m.seq, t.seq, b.seq] == [1, 2, 3]
    assert m.prev_hash == GENESIS and t.prev_hash == m.entry_hash and b.prev_hash == t.entry_hash
    async with router.read(await router.lookup(code)) as conn:
        stored, _ = await service.list_entries(conn, limit=10)
        assert [e.entry_hash for e in stored] == [m.entry_hash, t.entry_hash, b.entry_hash]
        assert all(entry_hash(code, e) == e.entry_hash for e in stored)
        assert await service.get_balance(conn, alice) == (20, 20)
        assert await service.get_balance(conn, bob) == (20, 0)
        assert await service.get_balance(conn, "burn") == (10, 0)
        assert await service.get_balance(conn, "mint") == (-50, -20)
        assert await service.head(conn) == (3, b.entry_hash)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "mint", "debit": "pool:territory"}, "debits the mint account"),
        ({"kind": "transfer", "debit": "mint"}, "use mint or burn"),
        ({"kind": "burn", "credit": "pool:global"}, "credits the burn account"),
        ({"kind": "adjust"}, "needs a memo"),
        ({"kind": "steal"}, "kind must be one of"),
        ({"credit": "player:not-a-uuid"}, "is not player:<uuid>"),
        ({"amount": -1}, "whole numbers"),
        ({"amount": 0, "xp": 0}, "must move tokens or XP"),
        ({"credit": "mint"}, "different accounts"),
        ({"ref_type": "proof"}, "come together"),
        ({"memo": "x" * 501}, "memo must be"),
    ],
)
async def test_entries_the_rules_refuse_are_400_and_write_nothing(router: Router, fields: dict, reason: str) -> None:
    base = {"kind": "mint", "debit": "mint", "credit": player_account(uuid.uuid4()), "amount": 5}
    async with router.transaction(await router.lookup("dk")) as conn:
        before = await service.head(conn)
        with pytest.raises(InvalidInput, match=reason) as info:
            await append(conn, "dk", **{**base, **fields})
        assert info.value.status == 400
        assert await service.head(conn) == before


async def test_overdraft_is_refused_and_its_transaction_leaves_nothing(env: Env, router: Router) -> None:
    code = await new_territory(router)
    alice, bob = players(2)
    async with router.transaction(await router.lookup(code)) as conn:
        await append(conn, code, kind="mint", debit="mint", credit=alice, amount=5, xp=3)
    refusal = f"account {alice} has 1 tokens and 3 XP; this transfer needs 2"
    with pytest.raises(InsufficientFunds, match=refusal) as info:
        async with router.transaction(await router.lookup(code)) as conn:
            await append(conn, code, kind="transfer", debit=alice, credit=bob, amount=4)  # fine on its own...
            await append(conn, code, kind="transfer", debit=alice, credit=bob, amount=2)  # ...not with this one
    assert info.value.status == 409 and info.value.code == "insufficient_funds"
    with pytest.raises(InsufficientFunds):  # XP can't be overdrawn either; a missing account has nothing
        async with router.transaction(await router.lookup(code)) as conn:
            await append(conn, code, kind="adjust", debit=alice, credit=bob, amount=0, xp=4, memo="fix")
    with pytest.raises(InsufficientFunds):
        async with router.transaction(await router.lookup(code)) as conn:
            await append(conn, code, kind="transfer", debit=bob, credit=alice, amount=1)
    schema = f"territory_{code}"
    assert rows(env.dsn_a, f"SELECT seq FROM {schema}.ledger_entries") == [(1,)]
    assert rows(env.dsn_a, f"SELECT seq FROM {schema}.ledger_head") == [(1,)]
    assert rows(env.dsn_a, f"SELECT account, tokens, xp FROM {schema}.balances WHERE account LIKE 'player:%%'") == [
        (alice, 5, 3)
    ]
    # And the database itself refuses a negative balance, whoever writes it.
    with pytest.raises(psycopg.errors.CheckViolation):
        rows(env.dsn_a, f"UPDATE {schema}.balances SET tokens = -1 WHERE account = %s", alice)
    # An autocommit connection would drop the head lock after one statement: refused outright.
    async with router.read(await router.lookup(code)) as conn:
        with pytest.raises(RuntimeError, match=r"router\.transaction"):
            await append(conn, code, kind="mint", debit="mint", credit=alice, amount=1)


async def test_concurrent_appends_get_gapless_sequence_and_a_valid_chain(env: Env, router: Router) -> None:
    code = await new_territory(router, "b")
    accounts = players(5)

    async def writer(i: int) -> list[int]:
        seqs = []
        for j in range(5):
            async with router.transaction(await router.lookup(code)) as conn:
                e = await append(conn, code, kind="mint", debit="mint", credit=accounts[(i + j) % 5], amount=1, xp=1)
                seqs.append(e.seq)
        return seqs

    results = await asyncio.gather(*(writer(i) for i in range(40)))
    assert sorted(s for r in results for s in r) == list(range(1, 201))
    report = await audit.verify_database(router, code, env.settings)
    assert report.ok, report.problems
    assert report.entries == 200 and report.balances == 2 + 5  # mint, burn and the five players
    async with router.read(await router.lookup(code)) as conn:
        held = [await service.get_balance(conn, a) for a in accounts]
    assert sum(tokens for tokens, _ in held) == 200


async def test_one_territorys_appends_do_not_wait_for_anothers(router: Router) -> None:
    busy, free = await new_territory(router), await new_territory(router)  # same server "a"
    account = player_account(uuid.uuid4())
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_the_head() -> None:
        async with router.transaction(await router.lookup(busy)) as conn:
            await append(conn, busy, kind="mint", debit="mint", credit=account, amount=1)
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_head())
    await held.wait()
    try:
        async with asyncio.timeout(5):  # another territory on the same server goes straight through
            async with router.transaction(await router.lookup(free)) as conn:
                assert (await append(conn, free, kind="mint", debit="mint", credit=account, amount=1)).seq == 1

        async def second_in_busy() -> int:
            async with router.transaction(await router.lookup(busy)) as conn:
                return (await append(conn, busy, kind="mint", debit="mint", credit=account, amount=1)).seq

        waiting = asyncio.create_task(second_in_busy())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # same territory: queued behind the open append
    finally:
        release.set()
        await holder
    assert await waiting == 2


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {s}.ledger_entries SET amount = amount + 1 WHERE seq = 1",
        "DELETE FROM {s}.ledger_entries WHERE seq = 1",
        "TRUNCATE {s}.ledger_entries CASCADE",  # CASCADE: past the foreign keys of other tables
        "UPDATE {s}.ledger_checkpoints SET key_id = 'x'",
        "DELETE FROM {s}.ledger_checkpoints",
        "TRUNCATE {s}.ledger_checkpoints",
    ],
)
async def test_the_database_refuses_to_change_entries_and_checkpoints(
    env: Env, router: Router, sql: str, ledger_with_checkpoint: str
) -> None:
    schema = f"territory_{ledger_with_checkpoint}"
    table = "ledger_checkpoints" if "checkpoints" in sql else "ledger_entries"
    with pytest.raises(psycopg.errors.RestrictViolation, match=f"{schema}.{table} is append-only"):
        rows(env.dsn_a, sql.format(s=schema))
    assert rows(env.dsn_a, f"SELECT count(*) FROM {schema}.ledger_entries") == [(3,)]
    assert rows(env.dsn_a, f"SELECT count(*) FROM {schema}.ledger_checkpoints") == [(1,)]


@pytest.fixture(scope="module")
async def ledger_with_checkpoint(env: Env, router: Router) -> str:
    code = await new_territory(router)
    await fill(router, code, 3)
    await sign(router, env, code)
    return code


# --- checkpoints ----------------------------------------------------------------------------------
async def test_checkpoint_signs_the_root_and_emits_an_event_once(env: Env, router: Router) -> None:
    code = await new_territory(router)
    async with router.transaction(await router.lookup(code)) as conn:
        assert await checkpoint(conn, code, env.settings) is None  # empty ledger: nothing to sign
    entries = await fill(router, code, 5)
    cp = await sign(router, env, code)
    assert cp.tree_size == 5
    assert cp.root == merkle.root_of([merkle.leaf_hash(e.entry_hash) for e in entries])
    (key,) = load_keys(env.settings, code)
    assert cp.key_id == key.key_id
    public = key.private.public_key()
    assert verify_signature(public, cp.signature, checkpoint_message(code, 5, cp.root, cp.created_at))
    assert not verify_signature(public, cp.signature, checkpoint_message(code, 4, cp.root, cp.created_at))
    again = await sign(router, env, code)  # nothing new: same checkpoint, no second event
    assert again == cp
    events = rows(env.dsn_a, f"SELECT envelope FROM territory_{code}.outbox WHERE type = 'ledger.checkpoint'")
    assert len(events) == 1
    data = events[0][0]["data"]  # type: ignore[index]
    validate("ledger.checkpoint", data)
    assert data == cp.to_json()


async def test_worker_checkpoints_territories_with_new_entries(env: Env, router: Router, tmp_path: Path) -> None:
    code = await new_territory(router, "b")
    await fill(router, code, 4)
    worker = Proc(
        env, ["worker", "--no-consumers", "--no-relay"], tmp_path / "worker.log", OH_LEDGER_CHECKPOINT_INTERVAL="0.5"
    ).start()
    try:

        async def signed() -> list[tuple[object, ...]]:
            return rows(env.dsn_b, f"SELECT tree_size FROM territory_{code}.ledger_checkpoints")

        assert await eventually(signed, timeout=30) == [(4,)]
        await fill(router, code, 2)

        async def signed_again() -> bool:
            return (6,) in rows(env.dsn_b, f"SELECT tree_size FROM territory_{code}.ledger_checkpoints")

        await eventually(signed_again, timeout=30)
    finally:
        worker.kill(signal.SIGTERM)


# --- tampering ------------------------------------------------------------------------------------
def _superuser(env: Env, code: str, *statements: str) -> None:
    """Edit the ledger as a superuser would: guard triggers off, change, triggers back on."""
    table = f"territory_{code}.ledger_entries"
    with psycopg.connect(env.dsn_a, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ledger_entries_append_only")
        try:
            for sql in statements:
                conn.execute(sql.format(t=table))
        finally:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ledger_entries_append_only")


TAMPERING = {
    "edit an amount": ("UPDATE {t} SET amount = amount + 1000 WHERE seq = 6",),
    "delete an entry": ("DELETE FROM {t} WHERE seq = 6",),
    "swap two entries": (
        "UPDATE {t} SET seq = 1000006 WHERE seq = 6",
        "UPDATE {t} SET seq = 6 WHERE seq = 9",
        "UPDATE {t} SET seq = 9 WHERE seq = 1000006",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_verify_names_the_first_bad_entry_and_old_proofs_still_hold(env: Env, router: Router, case: str) -> None:
    code = await new_territory(router)
    await fill(router, code, 8)
    old = await sign(router, env, code)
    await fill(router, code, 4)
    await sign(router, env, code)
    clean = env.cli("ledger", "verify", code)
    assert "12 entries, 2 checkpoints," in clean.stdout

    _superuser(env, code, *TAMPERING[case])

    result = env.cli("ledger", "verify", code, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first bad entry is seq 6" in result.stderr
    report = json.loads(env.cli("ledger", "verify", code, "--json", check=False).stdout)
    assert report["ok"] is False and report["first_bad_entry"] == 6
    # Entry 1 is untouched: its proof against the old checkpoint (8 entries) still holds.
    async with router.read(await router.lookup(code)) as conn:
        proof = await inclusion_proof(conn, code, 1, old.tree_size)
    assert proof.checkpoint == old
    assert entry_hash(code, proof.entry) == proof.entry.entry_hash
    assert merkle.verify_inclusion(merkle.leaf_hash(proof.entry.entry_hash), 0, 8, proof.path, old.root)


async def test_a_rewritten_tail_is_caught_by_the_signed_roots(env: Env, router: Router) -> None:
    """Rehashing the chain after an edit hides it from the chain check, not from the checkpoints."""
    code = await new_territory(router)
    entries = await fill(router, code, 6)
    await sign(router, env, code)
    edited = dataclasses.replace(entries[4], amount=1)
    new5 = entry_hash(code, edited)
    new6 = entry_hash(code, entries[5], prev_hash=new5)
    _superuser(
        env,
        code,
        f"UPDATE {{t}} SET amount = 1, entry_hash = '\\x{new5.hex()}'::bytea WHERE seq = 5",
        f"UPDATE {{t}} SET prev_hash = '\\x{new5.hex()}'::bytea, entry_hash = '\\x{new6.hex()}'::bytea WHERE seq = 6",
    )
    report = await audit.verify_database(router, code, env.settings)
    assert not report.ok
    reasons = [str(p) for p in report.problems]
    assert "checkpoint 6: root does not match the entries it covers" in reasons


# --- proofs, export, HTTP -------------------------------------------------------------------------
async def test_http_entries_checkpoints_proofs_and_keys(env: Env, router: Router, node: Node) -> None:
    code = await new_territory(router, "b")
    entries = await fill(router, code, 13)
    first = await sign(router, env, code)
    entries += await fill(router, code, 7)
    second = await sign(router, env, code)
    async with node.client(code) as c:
        keys = (await c.get("/api/ledger/keys")).json()
        trusted = parse_jwks(keys)
        assert keys["territory"] == code and set(trusted) == {second.key_id}

        seen, cursor = [], None
        while True:
            page = (await c.get("/api/ledger", params={"limit": 6, **({"cursor": cursor} if cursor else {})})).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [e["seq"] for e in seen] == list(range(1, 21))
        assert seen == [e.to_json() for e in entries]
        target = entries[0].credit
        mine = (await c.get("/api/ledger", params={"account": target, "limit": 200})).json()["items"]
        assert mine and all(target in (e["debit"], e["credit"]) for e in mine)
        assert [e["seq"] for e in mine] == [e.seq for e in entries if target in (e.debit, e.credit)]
        burns = (await c.get("/api/ledger", params={"kind": "burn", "from_seq": 5, "to_seq": 15})).json()["items"]
        assert [e["seq"] for e in burns] == [e.seq for e in entries if e.kind == "burn" and 5 <= e.seq <= 15]

        cps = (await c.get("/api/ledger/checkpoints")).json()["items"]
        assert [cp["tree_size"] for cp in cps] == [20, 13]
        for cp in cps:
            message = checkpoint_message(code, cp["tree_size"], bytes.fromhex(cp["root"]), _time(cp["created_at"]))
            assert verify_signature(trusted[cp["key_id"]], bytes.fromhex(cp["signature"]), message)

        for seq, size in ((1, 13), (13, 13), (7, 20), (20, 20), (14, None)):
            params = {"tree_size": size} if size else {}
            body = (await c.get(f"/api/ledger/entries/{seq}/proof", params=params)).json()
            root = bytes.fromhex(body["checkpoint"]["root"])
            path = [bytes.fromhex(h) for h in body["audit_path"]]
            leaf = merkle.leaf_hash(bytes.fromhex(body["entry"]["entry_hash"]))
            assert body["leaf_hash"] == leaf.hex() and body["tree_size"] == (size or 20)
            assert merkle.verify_inclusion(leaf, seq - 1, body["tree_size"], path, root)
            assert not merkle.verify_inclusion(leaf, seq % body["tree_size"], body["tree_size"], path, root)

        r = await c.get("/api/ledger/consistency", params={"from": 13, "to": 20})
        body = r.json()
        proof = [bytes.fromhex(h) for h in body["proof"]]
        assert merkle.verify_consistency(13, 20, first.root, second.root, proof)
        assert not merkle.verify_consistency(13, 20, first.root, second.root, proof[::-1])
        assert body["first"]["root"] == first.root.hex() and body["second"]["root"] == second.root.hex()

        assert (await c.get("/api/ledger/entries/21/proof")).status_code == 404
        assert (await c.get("/api/ledger/entries/14/proof", params={"tree_size": 13})).status_code == 404
        assert (await c.get("/api/ledger/entries/1/proof", params={"tree_size": 12})).status_code == 404
        assert (await c.get("/api/ledger/consistency", params={"from": 20, "to": 13})).status_code == 400
        assert (await c.get(f"/api/ledger/balances/{target}")).json()["account"] == target
    async with node.client(code, headers=node.auth(home="dk", roles={"dk": ["player"]})) as c:
        r = await c.get("/api/ledger")
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    async with node.client(code, anonymous=True) as c:
        assert (await c.get("/api/ledger/checkpoints")).status_code == 401


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_export_verifies_offline_without_a_database(env: Env, router: Router, node: Node, tmp_path: Path) -> None:
    code = await new_territory(router)
    await fill(router, code, 9)
    await sign(router, env, code)
    await fill(router, code, 3)  # after the last checkpoint: still exported and checked
    exported = tmp_path / "ledger.jsonl"
    env.cli("ledger", "export", code, "--out", str(exported))
    lines = [json.loads(x) for x in exported.read_text().splitlines()]
    assert [x["type"] for x in lines[:2]] == ["header", "checkpoint"]
    assert sum(x["type"] == "entry" for x in lines) == 12 and lines[-1]["type"] == "end"

    offline = env.cli("ledger", "verify", code, "--from-export", str(exported), OH_REGISTRY_DSN=CLOSED_DSN)
    assert "ok" in offline.stdout and "12 entries, 1 checkpoint," in offline.stdout
    # The database really is out of reach for that process:
    unreachable = env.cli("ledger", "verify", code, OH_REGISTRY_DSN=CLOSED_DSN, check=False)
    assert unreachable.returncode != 0

    # The same file over HTTP, checked against the keys the node publishes.
    async with node.client(code) as c:
        r = await c.get("/api/ledger/export")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        keys = (await c.get("/api/ledger/keys")).json()
    over_http, key_file = tmp_path / "http.jsonl", tmp_path / "keys.json"
    over_http.write_bytes(r.content)
    key_file.write_text(json.dumps(keys))
    env.cli(
        "ledger", "verify", code, "--from-export", str(over_http), "--keys", str(key_file), OH_REGISTRY_DSN=CLOSED_DSN
    )

    # Someone else's keys: the signatures no longer check out.
    other = await new_territory(router)
    await fill(router, other, 1)
    await sign(router, env, other)
    async with node.client(other) as c:
        key_file.write_text((await c.get("/api/ledger/keys")).text)
    wrong = env.cli("ledger", "verify", code, "--from-export", str(exported), "--keys", str(key_file), check=False)
    assert wrong.returncode == 1 and "unknown key" in wrong.stderr

    # An edited export names the entry; a cut one is refused.
    edited = [dict(x) for x in lines]
    victim = next(x for x in edited if x["type"] == "entry" and x["seq"] == 4)
    victim["amount"] += 1
    bad = tmp_path / "edited.jsonl"
    bad.write_text("".join(json.dumps(x) + "\n" for x in edited))
    result = env.cli("ledger", "verify", code, "--from-export", str(bad), OH_REGISTRY_DSN=CLOSED_DSN, check=False)
    assert result.returncode == 1 and "first bad entry is seq 4" in result.stderr
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(json.dumps(x) + "\n" for x in lines[:-3]))
    result = env.cli("ledger", "verify", code, "--from-export", str(cut), OH_REGISTRY_DSN=CLOSED_DSN, check=False)
    assert result.returncode == 1 and "cut short" in result.stderr


async def test_export_of_an_unknown_territory_is_404(node: Node) -> None:
    async with node.client("zz_nowhere") as c:
        r = await c.get("/api/ledger/export")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_cli_checkpoint_and_rotate_key(env: Env, router: Router) -> None:
    code = await new_territory(router)
    assert "is empty" in env.cli("ledger", "checkpoint", code).stdout
    await fill(router, code, 2)
    assert "tree_size=2" in env.cli("ledger", "checkpoint", code).stdout
    env.cli("ledger", "rotate-key", code)
    await fill(router, code, 1)
    out = env.cli("ledger", "checkpoint", code).stdout
    keys = load_keys(env.settings, code)
    assert len(keys) == 2 and f"key={keys[-1].key_id}" in out
    env.cli("ledger", "verify", code)  # checkpoints by both keys verify
    bad = env.cli("ledger", "verify", "Not-A-Code", check=False)
    assert bad.returncode == 2


# --- who may read which balance -------------------------------------------------------------------
async def test_a_players_balance_is_private_to_them_and_staff(
    env: Env, router: Router, node: Node, tmp_path: Path
) -> None:
    """Entries, proofs and the export are public to the territory; a player's balance is the
    player's and staff's, on both balance endpoints; pool balances are public."""
    code = await new_territory(router)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with router.transaction(await router.lookup(code)) as conn:
        for who in (alice, bob):
            await append(conn, code, kind="mint", debit="mint", credit=player_account(who), amount=50, xp=5)
        await append(conn, code, kind="mint", debit="mint", credit="pool:territory", amount=1000)
    await sign(router, env, code)
    as_bob = node.auth(home=code, roles={code: ["player"]}, user_id=bob)
    as_operator = node.auth(home=code, roles={code: ["operator"]})
    async with node.client(code, as_bob) as c:
        theirs = player_account(alice)
        for url, params in ((f"/api/ledger/balances/{theirs}", {}), ("/api/tokens/balance", {"account": theirs})):
            r = await c.get(url, params=params)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", (url, r.text)
        for url, params in (
            (f"/api/ledger/balances/{player_account(bob)}", {}),
            ("/api/tokens/balance", {}),
            ("/api/tokens/balance", {"account": player_account(bob)}),
        ):
            r = await c.get(url, params=params)
            assert r.status_code == 200 and r.json() == {"account": player_account(bob), "tokens": 50, "xp": 5}
        for url, params in (
            ("/api/ledger/balances/pool:territory", {}),
            ("/api/tokens/balance", {"account": "pool:territory"}),
        ):
            r = await c.get(url, params=params)
            assert r.status_code == 200 and r.json()["tokens"] == 1000, (url, r.text)
        # The public record stays public: entries name Alice's account, and the export verifies.
        assert theirs in [e["credit"] for e in (await c.get("/api/ledger")).json()["items"]]
        export = await c.get("/api/ledger/export")
        assert export.status_code == 200
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert lines[0]["balances"] == "public"
    shown = {x["account"] for x in lines if x["type"] == "balance"}
    assert shown == {player_account(bob), "pool:territory", "mint", "burn"}  # not Alice's
    path = tmp_path / "by-bob.jsonl"
    path.write_bytes(export.content)
    out = env.cli("ledger", "verify", code, "--from-export", str(path), OH_REGISTRY_DSN=CLOSED_DSN).stdout
    assert "ok" in out and "3 entries" in out
    # Staff read any balance, and export every one.
    async with node.client(code, as_operator) as c:
        r = await c.get(f"/api/ledger/balances/{theirs}")
        assert r.status_code == 200 and r.json()["tokens"] == 50
        r = await c.get("/api/tokens/balance", params={"account": theirs})
        assert r.status_code == 200 and r.json()["tokens"] == 50
        full = [json.loads(x) for x in (await c.get("/api/ledger/export")).text.splitlines()]
    assert full[0]["balances"] == "all" and theirs in {x["account"] for x in full if x["type"] == "balance"}
