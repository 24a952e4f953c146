"""Routing benchmark (issue 2). Prints ratios against baselines measured in the same run.

1. Routed ``GET /api/zones`` (registry lookup, server pool, scoped transaction, middleware)
   against a bare Litestar + asyncpg endpoint running the same SQL: throughput and p99 ratio.
2. Provisioning 1,000 territories (``oneheart territory import``) and a no-op
   ``oneheart territory migrate --all`` over them: seconds.
3. The same request against territory #1 and territory #1,000: latency ratio, node RSS.

Run after ``oneheart stack up``: ``.venv/bin/python scripts/bench/routing.py [--quick]``.
Uses a scratch database ``oh_bench`` on the stack's Postgres and wrk (installed if missing).
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.auth import Identity, issue_access, node_keys
from core.settings import Settings
from scripts.bench.common import PY, REPO, cli, env_for, free_port, median_load, scratch_database, start, wrk

ZONES = 50


def add_zones(dsn: str, code: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO territory_{code}.zones (id, name, lat, lng, radius_m) VALUES (%s, %s, 55.6, 12.5, 500)",
                [(uuid.uuid4(), f"zone {i}") for i in range(ZONES)],
            )


def player_headers(data: Path, territory: str) -> dict[str, str]:
    """A signed-in player of ``territory`` (token made with the node's own key ring)."""
    settings = Settings(data_dir=data)
    token = issue_access(
        node_keys(settings).load(), settings, Identity(uuid.uuid4(), territory, {territory: ["player"]})
    )
    return {"Authorization": f"Bearer {token}"}


def main() -> None:
    quick = "--quick" in sys.argv
    rounds, seconds = (2, 4) if quick else (3, 8)
    total = 100 if quick else 1000
    dsn = scratch_database("oh_bench")
    data = Path(tempfile.mkdtemp(prefix="oh-bench-"))
    # Limits high enough not to throttle the run; the per-request Redis check still happens.
    env = env_for(dsn, data, OH_RATE_LIMIT_API="100000000/60")
    first, last = "bench_0001", f"bench_{total:04d}"
    cli(env, "registry", "init")
    cli(env, "server", "add", "main", dsn, "--region", "bench")
    cli(env, "territory", "create", first, "--name", "Bench 1", "--server", "main")
    add_zones(dsn, first)

    port, bare_port = free_port(), free_port()
    node = start([PY, "-m", "node", "serve", "--port", str(port)], env, port, "/health")
    headers = player_headers(data, first)
    bare = start(
        [PY, str(REPO / "scripts/bench/bare_app.py"), dsn, f"territory_{first}", str(bare_port)],
        env,
        bare_port,
        "/api/zones",
    )
    try:
        wrk(f"{node.url}/api/zones", headers, 2)
        wrk(f"{bare.url}/api/zones", {}, 2)
        routed, baseline = [], []
        for _ in range(rounds):  # alternate so drift in machine load hits both sides alike
            routed.append(wrk(f"{node.url}/api/zones", headers, seconds))
            baseline.append(wrk(f"{bare.url}/api/zones", {}, seconds))
        r, b = median_load(routed), median_load(baseline)
        print(f"\n1. GET /api/zones ({ZONES} rows), wrk 1 thread 32 connections, median of {rounds} x {seconds}s")
        print(f"   routed node : {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms")
        print(f"   bare asyncpg: {b.rps:8.0f} req/s  p50 {b.p50_ms:6.2f} ms  p99 {b.p99_ms:6.2f} ms")
        print(f"   throughput ratio routed/bare = {r.rps / b.rps:.2f}   (goal >= 0.85)")
        print(f"   p99 ratio routed/bare        = {r.p99_ms / b.p99_ms:.2f}")
        bare.stop()

        csv = data / "territories.csv"
        csv.write_text("code,name,server\n" + "".join(f"bench_{i:04d},Bench {i},main\n" for i in range(2, total + 1)))
        provision = cli(env, "territory", "import", str(csv), "--concurrency", "8")
        noop = cli(env, "territory", "migrate", "--all")
        print(f"\n2. provisioning {total - 1} territories (CLI, incl. start-up): {provision:.1f} s (goal <= 30 s)")
        print(f"   no-op migrate --all over {total}: {noop:.2f} s   (goal <= 5 s)")

        add_zones(dsn, last)
        last_headers = player_headers(data, last)
        wrk(f"{node.url}/api/zones", last_headers, 2)
        one, thousand = [], []
        for _ in range(rounds):
            one.append(wrk(f"{node.url}/api/zones", headers, seconds))
            thousand.append(wrk(f"{node.url}/api/zones", last_headers, seconds))
        a, z = median_load(one), median_load(thousand)
        print(f"\n3. territory #1 vs #{total} ({total} provisioned)")
        print(f"   #1   : {a.rps:8.0f} req/s  p50 {a.p50_ms:6.2f} ms  p99 {a.p99_ms:6.2f} ms")
        print(f"   #{total}: {z.rps:8.0f} req/s  p50 {z.p50_ms:6.2f} ms  p99 {z.p99_ms:6.2f} ms")
        print(
            f"   latency ratio #{total}/#1: p50 {z.p50_ms / a.p50_ms:.2f}, p99 {z.p99_ms / a.p99_ms:.2f} (goal <= 1.1)"
        )
        print(f"   node RSS after the runs: {node.rss_mb():.0f} MB")
    finally:
        node.stop()
        if bare.proc.poll() is None:
            bare.stop()


if __name__ == "__main__":
    main()
