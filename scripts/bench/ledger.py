"""Ledger benchmark (issue 6). Prints ratios against baselines measured in the same run.

1. Appends per second: one territory with 16 concurrent writers, against a plain one-row
   insert transaction at the same concurrency; then four territories at once (16 writers each).
2. Full verification (hashes, chain, rules, Merkle roots) in entries/s, against plain SHA-256
   of the same canonical bytes; and ``verify_database`` end to end on the big ledger.
3. Inclusion-proof time at 1,000,000 entries (goal <= 5 ms), consistency proof and checkpoint
   time. The entries are generated in Python with correct hashes and Merkle subtrees and
   loaded with COPY (inserts: the append-only triggers allow them).

Run after ``oneheart stack up``: ``.venv/bin/python scripts/bench/ledger.py [--quick]``.
Uses a scratch database ``oh_bench_ledger`` on the stack's Postgres.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.auth import Identity, issue_access, node_keys
from core.routing import Router
from core.settings import Settings
from scripts.bench.common import PY, env_for, free_port, scratch_database, start
from services.ledger import audit, merkle, service
from services.ledger.canonical import GENESIS, Entry, canonical, entry_hash
from services.ledger.verify import verify
from services.zones.models import zones
from territories.migrate import upgrade_global
from territories.registry import Registry, open_router

WRITERS = 16


def player() -> str:
    return f"player:{uuid.uuid4()}"


async def appends(router: Router, codes: list[str], per_writer: int) -> int:
    """WRITERS concurrent writers per territory, one transaction per append; returns the count."""
    accounts = [player() for _ in range(50)]

    async def writer(code: str, i: int) -> None:
        for j in range(per_writer):
            async with router.transaction(await router.lookup(code)) as conn:
                await service.append(
                    conn, code, kind="mint", debit="mint", credit=accounts[(i + j) % 50], amount=1, xp=1
                )

    await asyncio.gather(*(writer(code, i) for code in codes for i in range(WRITERS)))
    return len(codes) * WRITERS * per_writer


async def plain_inserts(router: Router, codes: list[str], per_writer: int) -> int:
    """The baseline: as many one-row insert transactions (no lock, no hashing)."""

    async def writer(code: str) -> None:
        for _ in range(per_writer):
            async with router.transaction(await router.lookup(code)) as conn:
                await conn.execute(zones.insert().values(id=uuid.uuid4(), name="b", lat=1.0, lng=1.0, radius_m=1.0))

    await asyncio.gather(*(writer(code) for code in codes for _ in range(WRITERS)))
    return len(codes) * WRITERS * per_writer


def _load_process(dsn: str, data: str, code: str, plain: bool, per_writer: int, barrier: Any, out: Any) -> None:
    async def go() -> None:
        router = open_router(
            Settings(data_dir=Path(data)).replace(registry={"dsn": dsn}, db={"pool_size": WRITERS + 2})
        )
        work = plain_inserts if plain else appends
        await work(router, [code], 3)  # connect the pool, warm the statement caches
        barrier.wait()
        started = time.time()
        done = await work(router, [code], per_writer)
        out.put((started, time.time(), done))
        await router.close()

    asyncio.run(go())


def load(dsn: str, data: Path, codes: list[str], per_writer: int, *, plain: bool = False) -> float:
    """Aggregate per-second rate of one client process per entry of ``codes`` (repeats allowed),
    started together: one Python process alone cannot drive four territories."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(len(codes)), ctx.Queue()
    procs = [
        ctx.Process(target=_load_process, args=(dsn, str(data), code, plain, per_writer, barrier, out))
        for code in codes
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return sum(r[2] for r in results) / (max(r[1] for r in results) - min(r[0] for r in results))


def synthetic(code: str, n: int, accounts: list[str]) -> list[Entry]:
    """``n`` valid, chained mint entries (as appends would write them)."""
    out, prev = [], GENESIS
    at = datetime(2026, 1, 1, tzinfo=UTC)
    frontier = merkle.Frontier()
    for i in range(n):
        draft = Entry(
            i + 1,
            "mint",
            "mint",
            accounts[i % len(accounts)],
            1 + i % 97,
            i % 13,
            "proof",
            f"p-{i}",
            None,
            at + timedelta(microseconds=i),
            prev,
            b"",
        )
        digest = entry_hash(code, draft)
        subtrees = frontier.push(merkle.leaf_hash(digest))
        out.append(
            Entry(
                draft.seq,
                draft.kind,
                draft.debit,
                draft.credit,
                draft.amount,
                draft.xp,
                draft.ref_type,
                draft.ref_id,
                draft.memo,
                draft.created_at,
                prev,
                digest,
                subtrees,
            )
        )
        prev = digest
    return out


def bulk_load(dsn: str, code: str, n: int, chunk: int = 100_000) -> float:
    """Write ``n`` chained entries with COPY, then the balances and the head; returns seconds."""
    schema = f"territory_{code}"
    accounts = [player() for _ in range(1000)]
    totals: dict[str, list[int]] = {a: [0, 0] for a in accounts}
    started = time.perf_counter()
    prev, frontier = GENESIS, merkle.Frontier()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    columns = (
        "seq, kind, debit, credit, amount, xp, ref_type, ref_id, memo, created_at, prev_hash, entry_hash, subtrees"
    )
    types = ["int8", "text", "text", "text", "int8", "int8", "text", "text", "text", "timestamptz", "bytea", "bytea"]
    with psycopg.connect(dsn) as conn:
        for lo in range(0, n, chunk):
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {schema}.ledger_entries ({columns}) FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.set_types([*types, "bytea[]"])
                for i in range(lo, min(n, lo + chunk)):
                    credit = accounts[i % 1000]
                    amount, xp = 1 + i % 97, i % 13
                    e = Entry(
                        i + 1,
                        "mint",
                        "mint",
                        credit,
                        amount,
                        xp,
                        "proof",
                        f"p-{i}",
                        None,
                        at + timedelta(microseconds=i),
                        prev,
                        b"",
                    )
                    digest = hashlib.sha256(prev + canonical(code, e)).digest()
                    subtrees = frontier.push(merkle.leaf_hash(digest))
                    cp.write_row(
                        (
                            i + 1,
                            "mint",
                            "mint",
                            credit,
                            amount,
                            xp,
                            "proof",
                            f"p-{i}",
                            None,
                            e.created_at,
                            prev,
                            digest,
                            subtrees,
                        )
                    )
                    totals[credit][0] += amount
                    totals[credit][1] += xp
                    prev = digest
            conn.commit()
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {schema}.balances (account, tokens, xp, updated_seq) VALUES (%s, %s, %s, %s)",
                [(a, t, x, n) for a, (t, x) in totals.items()],
            )
            minted = [sum(t for t, _ in totals.values()), sum(x for _, x in totals.values())]
            cur.execute(
                f"UPDATE {schema}.balances SET tokens = %s, xp = %s WHERE account = 'mint'", [-minted[0], -minted[1]]
            )
            cur.execute(
                f"UPDATE {schema}.ledger_head SET seq = %s, hash = %s, frontier = %s", [n, prev, frontier.hashes]
            )
        conn.commit()
        conn.execute(f"ANALYZE {schema}.ledger_entries")
    return time.perf_counter() - started


def http_proofs(dsn: str, data: Path, code: str, size: int) -> str:
    """Proof latency through a real node (auth, routing, JSON), sequential requests."""
    port = free_port()
    env = env_for(dsn, data, OH_RATE_LIMIT_API="100000000/60", OH_ACCESS_LOG="false")
    node = start([PY, "-m", "node", "serve", "--port", str(port)], env, port, "/health")
    try:
        settings = Settings(data_dir=data)
        token = issue_access(node_keys(settings).load(), settings, Identity(uuid.uuid4(), code, {code: ["player"]}))
        rng = random.Random(7)
        samples = []
        with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}) as client:
            for i in range(550):
                started = time.perf_counter()
                r = client.get(f"/api/ledger/entries/{rng.randint(1, size)}/proof")
                if i >= 50:  # after warm-up
                    samples.append(time.perf_counter() - started)
                r.raise_for_status()
        return ms(samples)
    finally:
        node.stop()


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"median {statistics.median(samples) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


async def main() -> None:
    quick = "--quick" in sys.argv
    per_writer = 40 if quick else 150
    pure_n = 50_000 if quick else 200_000
    big_n = 100_000 if quick else 1_000_000
    dsn = scratch_database("oh_bench_ledger")
    data = Path(tempfile.mkdtemp(prefix="oh-bench-ledger-"))
    settings = Settings(data_dir=data).replace(registry={"dsn": dsn}, db={"pool_size": 4 * WRITERS + 4})
    router = open_router(settings)
    await upgrade_global(router.registry)
    await Registry(router, "bench").add_server("main", dsn, "bench")
    codes = [f"bench_l{i}" for i in range(1, 6)]
    for code in codes:
        await Registry(router, "bench").create_territory(code, code, "main")
    try:
        # 1. appends
        base = load(dsn, data, codes[:1], per_writer, plain=True)
        one = load(dsn, data, codes[:1], per_writer)
        same = load(dsn, data, codes[:1] * 4, per_writer)
        four = load(dsn, data, codes[1:5], per_writer)
        async with router.transaction(await router.lookup(codes[0])) as conn:
            await service.append(conn, codes[0], kind="mint", debit="mint", credit=player(), amount=1)
        started = time.perf_counter()
        for _ in range(200):
            async with router.transaction(await router.lookup(codes[0])) as conn:
                await service.append(conn, codes[0], kind="mint", debit="mint", credit=player(), amount=1)
        single = (time.perf_counter() - started) / 200
        started = time.perf_counter()
        for _ in range(10):
            async with router.transaction(await router.lookup(codes[0])) as conn:
                for _ in range(100):
                    await service.append(conn, codes[0], kind="mint", debit="mint", credit=player(), amount=1)
        batched = 1000 / (time.perf_counter() - started)
        print(f"\n1. appends, one transaction each; a client process has {WRITERS} concurrent writers")
        print(f"   plain one-row insert, 1 territory, 1 process : {base:7.0f} /s")
        print(f"   ledger append, 1 territory, 1 process        : {one:7.0f} /s   ratio to plain {one / base:.2f}")
        print(f"   ledger append, 1 territory, 4 processes      : {same:7.0f} /s   (one head lock)")
        print(
            f"   ledger append, 4 territories, 4 processes    : {four:7.0f} /s   "
            f"ratio to 1 territory x 4 processes {four / same:.2f}, to 1 process {four / one:.2f}"
        )
        print(f"   one writer alone: {single * 1000:.2f} ms per append; 100 appends per transaction: {batched:.0f} /s")

        # 2. verification, pure
        accounts = [player() for _ in range(1000)]
        entries = synthetic("bench_pure", pure_n, accounts)
        raw = [e.prev_hash + canonical("bench_pure", e) for e in entries]
        started = time.perf_counter()
        for b in raw:
            hashlib.sha256(b).digest()
        plain = pure_n / (time.perf_counter() - started)
        started = time.perf_counter()
        report = verify("bench_pure", entries, [], {})
        full = pure_n / (time.perf_counter() - started)
        assert report.ok, report.problems[:3]
        print(f"\n2. verification of {pure_n:,} entries in memory")
        print(f"   plain sha256 of the same bytes: {plain:12,.0f} entries/s")
        print(f"   full verification             : {full:12,.0f} entries/s   ratio {full / plain:.3f}")

        # 3. a big ledger
        big = "bench_big"
        await Registry(router, "bench").create_territory(big, "big", "main")
        seconds = bulk_load(dsn, big, big_n)
        print(f"\n3. {big_n:,} entries generated and loaded with COPY in {seconds:.1f} s")
        started = time.perf_counter()
        async with router.transaction(await router.lookup(big)) as conn:
            first = await service.checkpoint(conn, big, settings)
        took = (time.perf_counter() - started) * 1000
        print(f"   first checkpoint (root from the head's frontier; makes the key): {took:.2f} ms")
        assert first is not None
        async with router.transaction(await router.lookup(big)) as conn:
            for _ in range(37):
                await service.append(conn, big, kind="mint", debit="mint", credit=player(), amount=1)
        started = time.perf_counter()
        async with router.transaction(await router.lookup(big)) as conn:
            second = await service.checkpoint(conn, big, settings)
        took = (time.perf_counter() - started) * 1000
        print(f"   next checkpoint (key already made, 37 entries later): {took:.2f} ms")
        assert second is not None
        rng = random.Random(6)
        samples, path_len = [], 0
        for _ in range(50):  # warm-up
            async with router.read(await router.lookup(big)) as conn:
                await service.inclusion_proof(conn, big, rng.randint(1, big_n), first.tree_size)
        for _ in range(1000):
            seq = rng.randint(1, big_n)
            started = time.perf_counter()
            async with router.read(await router.lookup(big)) as conn:
                proof = await service.inclusion_proof(conn, big, seq, first.tree_size)
            samples.append(time.perf_counter() - started)
            leaf = merkle.leaf_hash(proof.entry.entry_hash)
            assert merkle.verify_inclusion(leaf, seq - 1, first.tree_size, proof.path, first.root)
            path_len = len(proof.path)
        print(f"   inclusion proof (service + database, {path_len} hashes): {ms(samples)}   (goal <= 5 ms)")
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            async with router.read(await router.lookup(big)) as conn:
                old, new, path = await service.consistency_proof(conn, big, first.tree_size, second.tree_size)
            samples.append(time.perf_counter() - started)
        assert merkle.verify_consistency(old.tree_size, new.tree_size, old.root, new.root, path)
        print(f"   consistency proof {first.tree_size:,} -> {second.tree_size:,}: {ms(samples)}")
        over_http = http_proofs(dsn, data, big, big_n)
        print(f"   over HTTP (GET /api/ledger/entries/{{seq}}/proof, one keep-alive client): {over_http}")
        started = time.perf_counter()
        report = await audit.verify_database(router, big, settings)
        elapsed = time.perf_counter() - started
        assert report.ok, report.problems[:3]
        print(
            f"   verify_database (read + full check of {report.entries:,} entries): {elapsed:.1f} s, "
            f"{report.entries / elapsed:,.0f} entries/s   ratio to plain sha256 {report.entries / elapsed / plain:.3f}"
        )
    finally:
        await router.close()


if __name__ == "__main__":
    asyncio.run(main())
