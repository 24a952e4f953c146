"""Matrix gateway benchmark (issue 5). Prints ratios against a baseline measured in the same run.

Two Synapse homeservers federating over TLS on loopback (territory A's and B's), the gateway
(``oneheart gateway``) and an outbox relay (``oneheart worker --no-consumers``) on a scratch
database and a NATS server of the benchmark's own. A Matrix user of B's homeserver sits in the
zone room on A's homeserver and long-polls /sync.

1. proof.verified -> visible on B: a proof (a distinct ~200 KB JPEG pinned in IPFS) is marked
   ``needs_community`` and ``proof.verified`` committed (t0); the relay publishes it, the
   gateway reads the evidence back from IPFS, makes a thumbnail, uploads it to A's media
   store, posts it in the zone room; A sends it to B over federation; B's user sees it (t1).
   Also: t0 -> the post on A (the gateway's own share).
2. Baseline, interleaved with 1: a plain text message from a user of A to the same room,
   sent -> seen by B's user (the raw federation hop).

Run after ``oneheart stack up`` (uses its Postgres and IPFS):
``.venv/bin/python scripts/bench/matrix.py [--quick]``. Scratch database ``oh_bench_matrix``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from nio import AsyncClient, AsyncClientConfig, SyncResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.events.outbox import emit
from core.evidence import EvidenceStore
from core.routing import Router
from core.settings import Settings
from devstack import synapse
from federation.registration import appservice_registration
from scripts.bench.common import PY, cli, env_for, free_port, private_nats, scratch_database, start
from scripts.bench.proofs import distinct_photos
from services.players.service import ensure_player
from services.proofs.models import proofs
from services.proofs.service import Place, Stored, submit
from services.quests.dto import QuestIn
from services.quests.service import create_quest, start_quest
from services.social.models import matrix_rooms, social_posts
from services.zones.dto import ZoneIn
from services.zones.service import create_zone
from territories.registry import open_router

A, B = "bench_mx_a", "bench_mx_b"


def user(hs: synapse.Homeserver) -> AsyncClient:
    made = synapse.register_user(hs, f"u{secrets.token_hex(4)}", secrets.token_urlsafe(16))
    client = AsyncClient(hs.url, made["user_id"], config=AsyncClientConfig(max_timeouts=3, request_timeout=60))
    client.access_token, client.user_id = made["access_token"], made["user_id"]
    return client


class Watcher:
    """B's user: long-polls /sync and notes when each event id / proof id first arrives."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.seen: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        since = None
        while True:
            resp = await self.client.sync(timeout=30000, since=since, full_state=False)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            since = resp.next_batch
            for room in resp.rooms.join.values():
                for event in room.timeline.events:
                    self.seen.setdefault(event.event_id, now)
                    block = event.source.get("content", {}).get("org.oneheart.proof")
                    if block and "outcome" not in block:
                        self.seen.setdefault(block["proof_id"], now)

    async def wait(self, key: str, within: float = 60) -> float:
        deadline = time.perf_counter() + within
        while key not in self.seen:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{key} never reached B")
            await asyncio.sleep(0.002)
        return self.seen[key]


async def new_proof(router: Router, store: EvidenceStore, quest_id: uuid.UUID, photo: bytes) -> uuid.UUID:
    player = uuid.uuid4()
    cid = await store.put(photo)
    async with router.transaction(await router.lookup(A)) as conn:
        await ensure_player(conn, player)
        assignment, _ = await start_quest(conn, quest_id, player)
        stored = Stored(cid, uuid.uuid4().hex, len(photo), "image/jpeg", "image", 512, 512, 300.0, None, {})
        place = Place(65.0, 25.4, 5.0, datetime.now(UTC))
        accepted = await submit(conn, assignment, quest_id, player, place, stored)
    return accepted.proof_id


async def verified(router: Router, proof_id: uuid.UUID) -> float:
    """Mark the proof as needing the community and commit ``proof.verified``; returns t0."""
    async with router.transaction(await router.lookup(A)) as conn:
        row = (
            await conn.execute(
                proofs.update()
                .where(proofs.c.id == proof_id)
                .values(status="needs_community", score=50, verified_at=sa.func.now())
                .returning(proofs.c.quest_id, proofs.c.player_id)
            )
        ).one()
        data = {
            "proof_id": str(proof_id),
            "quest_id": str(row.quest_id),
            "player_id": str(row.player_id),
            "score": 50,
            "flags": [],
            "decision": "needs_community",
        }
        await emit(conn, "proof.verified", data)
    return time.perf_counter()


async def posted_at(router: Router, proof_id: uuid.UUID, t0: float) -> float:
    """When the post existed on A (polled; an upper bound within ~2 ms)."""
    while True:
        async with router.read(await router.lookup(A)) as conn:
            found = (
                await conn.execute(sa.select(social_posts.c.event_id).where(social_posts.c.proof_id == proof_id))
            ).first()
        if found:
            return time.perf_counter() - t0
        await asyncio.sleep(0.002)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(settings: Settings, hs_a: synapse.Homeserver, hs_b: synapse.Homeserver, rounds: int) -> None:
    router = open_router(settings)
    store = EvidenceStore(settings)
    photos = distinct_photos(rounds + 1)
    async with router.transaction(await router.lookup(A)) as conn:
        zone = await create_zone(conn, ZoneIn("Bench Shore", 65.0, 25.4, 2000))
        quest = await create_quest(
            conn,
            QuestIn("Bench clean-up", "daily", "beach_cleanup", zone.id, 10, 1, 1, max_completions=10_000),
            uuid.uuid4(),
        )
    # Warm-up proof: the gateway makes the space and the zone room.
    first = await new_proof(router, store, quest.id, photos[0])
    await verified(router, first)
    await posted_at(router, first, time.perf_counter())
    async with router.read(await router.lookup(A)) as conn:
        room_id, alias = (
            await conn.execute(
                sa.select(matrix_rooms.c.room_id, matrix_rooms.c.alias).where(matrix_rooms.c.kind == "zone")
            )
        ).one()
    sender, watcher_client = user(hs_a), user(hs_b)
    await sender.join(alias)
    joined = await watcher_client.join(alias)
    assert getattr(joined, "room_id", None) == room_id, joined
    watcher = Watcher(watcher_client)
    watcher.task = asyncio.create_task(watcher.run())
    await asyncio.sleep(1)

    hop: list[float] = []
    to_b: list[float] = []
    to_a: list[float] = []
    for i in range(rounds):
        t = time.perf_counter()
        sent = await sender.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"hop {i}"})
        hop.append((await watcher.wait(str(sent.event_id))) - t)
        proof_id = await new_proof(router, store, quest.id, photos[i + 1])
        t0 = await verified(router, proof_id)
        on_a = asyncio.create_task(posted_at(router, proof_id, t0))
        to_b.append((await watcher.wait(str(proof_id))) - t0)
        to_a.append(await on_a)
    watcher.task.cancel()
    for client in (sender, watcher_client):
        await client.close()
    await store.close()
    await router.close()

    def row(label: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return f"   {label:<48} median {statistics.median(ms):7.1f} ms   p95 {pct(ms, 0.95):7.1f} ms"

    print(f"\n{rounds} rounds, interleaved (SQLite homeservers, one gateway, 2 cores)")
    print(row("raw federation hop A -> B (plain message)", hop))
    print(row("proof.verified -> post on A (gateway)", to_a))
    print(row("proof.verified -> post visible on B", to_b))
    ratio = statistics.median(to_b) / statistics.median(hop)
    print(f"   ratio (proof.verified -> B) / (raw hop): {ratio:.1f}")
    print(
        f"   gateway share: {statistics.median(to_a) * 1000:.1f} ms (relay, NATS, IPFS read, thumbnail, upload, send)"
    )


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = 5 if quick else 20
    data = Path(tempfile.mkdtemp(prefix="oh-bench-matrix-"))
    dsn = scratch_database("oh_bench_matrix")
    nats_url = private_nats(data)
    gateway_port = free_port()
    env = env_for(dsn, data, OH_NATS_URL=nats_url, OH_MATRIX_GATEWAY_PORT=str(gateway_port))
    settings = Settings(data_dir=data).replace(
        registry={"dsn": dsn},
        events={"nats_url": nats_url},
        evidence={"ipfs_url": env.get("OH_IPFS_URL", Settings().evidence.ipfs_url)},
    )
    cli(env, "registry", "init")
    cli(env, "server", "add", "main", dsn, "--region", "bench")
    for code in (A, B):
        cli(env, "territory", "create", code, "--name", code, "--server", "main")
    tls = synapse.ensure_tls(data / "synapse" / "ca")
    hs_a = synapse.Homeserver(data / "synapse" / "a", free_port(), free_port())
    hs_b = synapse.Homeserver(data / "synapse" / "b", free_port(), free_port())
    from federation import config
    from federation.config import HomeserverConfig

    cfg = HomeserverConfig(hs_a.server_name, hs_a.url, config.new_token(), config.new_token())
    config.save(settings, A, cfg)
    registration = hs_a.folder / "appservice.json"
    registration.parent.mkdir(parents=True, exist_ok=True)
    registration.write_text(
        json.dumps(
            appservice_registration(
                territory=A,
                server_name=cfg.server_name,
                url=f"http://127.0.0.1:{gateway_port}/territories/{A}",
                as_token=cfg.as_token,
                hs_token=cfg.hs_token,
            )
        )
    )
    synapse.write_config(hs_a, tls, appservices=[registration], limits=synapse.RELAXED_LIMITS)
    synapse.write_config(hs_b, tls, limits=synapse.RELAXED_LIMITS)
    started = time.perf_counter()
    for hs in (hs_a, hs_b):
        synapse.start_synapse(hs)
    print(f"two homeservers started in {time.perf_counter() - started:.1f} s")

    async def attach() -> None:
        from territories.registry import Registry

        router = open_router(settings)
        await Registry(router, "bench").set_homeserver(A, hs_a.server_name)
        await router.close()

    asyncio.run(attach())
    relay = start([PY, "-m", "node", "worker", "--no-consumers"], env, hs_a.client_port, "/_matrix/client/versions")
    gateway = start([PY, "-m", "node", "gateway", "--port", str(gateway_port)], env, gateway_port, "/health")
    try:
        asyncio.run(measure(settings, hs_a, hs_b, rounds))
    finally:
        gateway.stop()
        relay.stop()
        for hs in (hs_a, hs_b):
            synapse.stop_synapse(hs)  # the private NATS stops at exit


if __name__ == "__main__":
    main()
