"""Proof pipeline benchmark (issue 4). Prints ratios against baselines measured in the same run.

1. End to end: N players each start a quest and upload a ~200 KB JPEG (distinct photos) to a
   node; a worker verifies them. Proofs per second from the first upload to the last decision
   stored.
2. The verification worker's handler per proof (read the proof, nearest duplicate, previous
   proof, IPFS read checked against the CID, decode, open_nsfw, features, review model, writes)
   run in this process on the proofs of step 1, inside transactions that are rolled back;
   against the bare onnxruntime inference of the same proofs (open_nsfw + review model
   ``session.run``). Ratio goal <= 1.5.

Run after ``oneheart stack up`` (needs its IPFS daemon): ``.venv/bin/python scripts/bench/proofs.py [--quick]``.
Uses a scratch database ``oh_bench_proofs`` on the stack's Postgres.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg
import sqlalchemy as sa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core import media
from core.auth import Identity, issue_access, node_keys
from core.events.envelope import Event
from core.routing import Router
from core.settings import Settings
from scripts.bench.common import PY, cli, env_for, free_port, scratch_database, start
from scripts.bench.verification import PHOTOS, sample_jpeg
from services.verification import consumers, model, safety, signals
from territories.registry import open_router

TERRITORY = "bench_proofs"


def distinct_photos(count: int) -> list[bytes]:
    """``count`` different ~200 KB JPEGs: the sample photos, each mirrored/rotated/cropped."""
    bases = [Image.open(io.BytesIO(sample_jpeg(name))) for name in PHOTOS]
    out = []
    for i in range(count):
        image = bases[i % len(bases)]
        image = image.rotate(90 * ((i // len(bases)) % 4), expand=True)
        if (i // (4 * len(bases))) % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop = (i // (8 * len(bases))) * 8
        image = image.crop((crop, crop, image.width - crop, image.height - crop))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90, exif=_exif())
        out.append(buf.getvalue())
    return out


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Fairphone", "FP5"
    exif.get_ifd(0x8769)[0x9003] = datetime.now(UTC).strftime("%Y:%m:%d %H:%M:%S")
    return exif


def headers(settings: Settings, roles: list[str]) -> dict[str, str]:
    token = issue_access(node_keys(settings).load(), settings, Identity(uuid.uuid4(), TERRITORY, {TERRITORY: roles}))
    return {"Authorization": f"Bearer {token}", "X-Territory": TERRITORY}


async def end_to_end(url: str, settings: Settings, photos: list[bytes], dsn: str) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers(settings, ["operator"])) as staff:
        zone = (await staff.post("/api/zones", json={"name": "b", "lat": 55.66, "lng": 12.64, "radius_m": 2000})).json()
        quest = await staff.post(
            "/api/quests",
            json={
                "title": "bench",
                "type": "daily",
                "category": "bench",
                "zone_id": zone["id"],
                "base_xp": 1,
                "base_tokens": 1,
                "difficulty": 1,
            },
        )
        quest_id = quest.json()["id"]
    gate = asyncio.Semaphore(8)

    async def one(photo: bytes) -> None:
        async with gate, httpx.AsyncClient(base_url=url, timeout=60, headers=headers(settings, ["player"])) as c:
            await c.post(f"/api/quests/{quest_id}/start")
            form = {
                "lat": "55.66",
                "lng": "12.64",
                "accuracy_m": "5",
                "captured_at": (datetime.now(UTC) - timedelta(seconds=30)).isoformat(),
            }
            r = await c.post(
                f"/api/quests/{quest_id}/proofs",
                data=form,
                files={"file": ("p.jpg", photo, "image/jpeg")},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if r.status_code != 202:
                raise RuntimeError(f"upload failed: {r.status_code} {r.text}")

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in photos))
    uploaded = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            left = conn.execute(
                f"SELECT count(*) FROM territory_{TERRITORY}.proofs WHERE status = 'submitted'"
            ).fetchone()
            if left and left[0] == 0:
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"{left} proofs still unverified after 10 minutes")
            await asyncio.sleep(0.05)
    return uploaded, time.perf_counter() - started


class Rollback(Exception):
    """Ends a measured handler run without keeping its writes."""


async def run_handler(router: Router, proof_id: uuid.UUID, cid: str, mime: str) -> float:
    """One verification handler run on a proof (reset to submitted), rolled back; its ms."""
    data = {"proof_id": str(proof_id), "cid": cid, "mime": mime}  # what the handler reads
    event = Event(uuid.uuid4(), "proof.submitted", TERRITORY, datetime.now(UTC).isoformat(), data)
    elapsed = 0.0
    try:
        async with router.transaction(await router.lookup(TERRITORY)) as conn:
            await conn.execute(
                consumers.proofs.update().where(consumers.proofs.c.id == proof_id).values(status="submitted")
            )
            await conn.execute(consumers.verifications.delete().where(consumers.verifications.c.proof_id == proof_id))
            t0 = time.perf_counter()
            await consumers.verify_proof(conn, event)
            elapsed = (time.perf_counter() - t0) * 1000
            raise Rollback
    except Rollback:
        pass
    return elapsed


async def handler_vs_inference(settings: Settings, rounds: int) -> tuple[float, float, float]:
    """Per proof (ms): the handler alone (median), the handler as the worker runs it
    (``OH_VERIFICATION_CONCURRENCY`` at once: wall time / proofs), and the bare model runs."""
    router = open_router(settings)
    async with router.read(await router.lookup(TERRITORY)) as conn:
        ev = consumers.evidence
        found = list(await conn.execute(sa.select(ev.c.proof_id, ev.c.cid, ev.c.mime)))
    for proof_id, cid, mime in found[:4]:  # warm-up: sessions, pools, statement caches
        await run_handler(router, proof_id, cid, mime)
    alone, inference_ms, batched = [], [], []
    gate = asyncio.Semaphore(settings.verification.concurrency)

    async def gated(proof_id: uuid.UUID, cid: str, mime: str) -> float:
        async with gate:
            return await run_handler(router, proof_id, cid, mime)

    for _ in range(rounds):
        for proof_id, cid, mime in found:
            alone.append(await run_handler(router, proof_id, cid, mime))
            content = await consumers.store().get(cid)
            batch = safety.preprocess(media.decode(content, mime)).copy()
            vector = np.asarray([signals.features(signals.Signals())], dtype=np.float32)
            t0 = time.perf_counter()
            safety.infer(batch)
            model.infer(vector)
            inference_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await asyncio.gather(*(gated(*row) for row in found))
        batched.append((time.perf_counter() - t0) * 1000 / len(found))
    await router.close()
    return statistics.median(alone), statistics.median(batched), statistics.median(inference_ms)


def main() -> None:
    quick = "--quick" in sys.argv
    count = 24 if quick else 120
    dsn = scratch_database("oh_bench_proofs")
    data = Path(tempfile.mkdtemp(prefix="oh-bench-proofs-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = env_for(dsn, data, OH_RATE_LIMIT_API="100000000/60", OH_PUBLIC_URL=url)
    settings = Settings(data_dir=data).replace(
        registry={"dsn": dsn},
        http={"public_url": url},
        evidence={"ipfs_url": env.get("OH_IPFS_URL", Settings().evidence.ipfs_url)},
    )
    cli(env, "registry", "init")
    cli(env, "server", "add", "main", dsn, "--region", "bench")
    cli(env, "territory", "create", TERRITORY, "--name", "Bench proofs", "--server", "main")
    photos = distinct_photos(count)
    sizes = [len(p) for p in photos]
    node = start([PY, "-m", "node", "serve", "--port", str(port)], env, port, "/health")
    worker = start([PY, "-m", "node", "worker"], env, port, "/health")  # the worker has no port: probe the node
    try:
        uploaded, total = asyncio.run(end_to_end(node.url, settings, photos, dsn))
        print(f"\n1. end to end: {count} proofs of {statistics.median(sizes) / 1000:.0f} KB (median), 8 at a time")
        print(f"   uploads answered 202 in {uploaded:.1f} s ({count / uploaded:.1f} uploads/s)")
        print(f"   last decision stored after {total:.1f} s: {count / total:.1f} proofs/s end to end")
    finally:
        worker.stop()
        node.stop()
    alone, batched, inference = asyncio.run(handler_vs_inference(settings, 1 if quick else 3))
    print("\n2. verification per proof, in one process, the same proofs")
    print(f"   bare onnxruntime inference (open_nsfw + review model), median:   {inference:6.1f} ms")
    print(
        f"   worker handler alone (DB, IPFS read + CID check, decode, models,  {alone:6.1f} ms"
        f"  ratio {alone / inference:.2f}"
    )
    print("   writes), median")
    print(
        f"   as the worker runs it, {settings.verification.concurrency} at once (wall time / proofs):"
        f"            {batched:6.1f} ms  ratio {batched / inference:.2f}   (goal <= 1.5)"
    )


if __name__ == "__main__":
    main()
