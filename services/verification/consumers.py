"""The verification worker: scores each submitted proof and emits ``proof.verified``.

Media facts measured at upload (sniffed type, size, pHash, sharpness, EXIF) are read from the
evidence row; the worker reads the bytes back from IPFS (checked against the CID) only for the
content-safety model. Place, time and history come from the territory's own tables.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog
from prometheus_client import Histogram
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.ext.asyncio import AsyncConnection

from core import media
from core.events.consumers import Consumer
from core.events.envelope import Event
from core.evidence import EvidenceStore
from core.geo import haversine_m
from core.settings import get_settings
from services.proofs import service as lifecycle
from services.proofs.models import evidence, proofs, verifications
from services.proofs.service import with_evidence
from services.quests.models import quests
from services.verification import model, safety, signals
from services.verification.policy import KEY, VerificationPolicy
from services.zones.models import zones
from territories.policy import policy_from, stored_policy

log = structlog.get_logger(__name__)
SECONDS = Histogram("oh_verification_seconds", "Time to verify one proof (worker handler)")
_store: EvidenceStore | None = None


def store() -> EvidenceStore:
    global _store
    if _store is None:
        _store = EvidenceStore(get_settings())
    return _store


@functools.cache
def review_model() -> Path:
    return model.active_path(get_settings().data_dir)


@functools.cache
def model_name() -> str:
    """Which review model scored a proof: file name and the start of its SHA-256."""
    path = review_model()
    return f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def nsfw_of(data: bytes, mime: str) -> float:
    return safety.nsfw_probability(media.decode(data, mime))


def _read() -> sa.Select[Any]:
    """Everything the checks need about one proof, in one round trip: the proof and its
    evidence, its zone, the player's previous proof (impossible travel), the territory's
    nearest earlier evidence (same bytes, else fewest pHash bits apart) and the policy."""
    before, seen, near_ev = proofs.alias("before"), evidence.alias("seen"), evidence.alias("near_ev")
    previous = (
        sa.select(before.c.lat, before.c.lng, before.c.captured_at)
        .where(
            before.c.player_id == proofs.c.player_id,
            before.c.id != proofs.c.id,
            before.c.captured_at <= proofs.c.captured_at,
        )
        .order_by(before.c.captured_at.desc())
        .limit(1)
        .lateral("previous")
    )
    same_bytes = (
        sa.select(seen.c.proof_id)
        .where(
            seen.c.sha256 == evidence.c.sha256,
            seen.c.proof_id != proofs.c.id,
            seen.c.created_at <= evidence.c.created_at,
        )
        .limit(1)
        .scalar_subquery()
    )
    bits = sa.func.bit_count(sa.cast(near_ev.c.phash.op("#")(evidence.c.phash), BIT(64)))
    nearest = (
        sa.select(near_ev.c.proof_id, bits.label("bits"))
        .where(
            near_ev.c.phash.is_not(None),
            near_ev.c.proof_id != proofs.c.id,
            near_ev.c.created_at <= evidence.c.created_at,
        )
        .order_by(bits)
        .limit(1)
        .lateral("nearest")
    )
    return (
        with_evidence()
        .add_columns(
            zones.c.lat.label("zone_lat"),
            zones.c.lng.label("zone_lng"),
            zones.c.radius_m.label("zone_radius_m"),
            previous.c.lat.label("prev_lat"),
            previous.c.lng.label("prev_lng"),
            previous.c.captured_at.label("prev_at"),
            same_bytes.label("same_bytes_as"),
            nearest.c.proof_id.label("nearest_id"),
            nearest.c.bits.label("nearest_bits"),
            stored_policy(KEY).label("policy"),
        )
        .join(quests, quests.c.id == proofs.c.quest_id)
        .join(zones, zones.c.id == quests.c.zone_id)
        .outerjoin(previous, sa.true())
        .outerjoin(nearest, sa.true())
        .with_for_update(of=proofs)
    )


_READ = _read()


async def _proof(conn: AsyncConnection, proof_id: uuid.UUID) -> Any:
    return (await conn.execute(_READ.where(proofs.c.id == proof_id))).first()


async def nsfw_from_ipfs(cid: str, mime: str, size: int | None = None) -> float:
    """Read the evidence back (checked against its CID) and run the content-safety model."""
    data = await store().get(cid, size)
    return await asyncio.to_thread(nsfw_of, data, mime)


def _taken_at(exif: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(exif["taken_at"]) if exif.get("taken_at") else None
    except (TypeError, ValueError):
        return None


def measure(row: Any, nsfw: float | None) -> signals.Signals:
    travel_km = speed = None
    if row.prev_at is not None:
        travel_km = haversine_m(row.prev_lat, row.prev_lng, row.lat, row.lng) / 1000
        speed = signals.travel_speed_kmh((row.prev_lat, row.prev_lng), row.prev_at, (row.lat, row.lng), row.captured_at)
    duplicate_of, distance = None, None
    if row.same_bytes_as is not None:
        duplicate_of, distance = str(row.same_bytes_as), 0
    elif row.nearest_id is not None:
        duplicate_of, distance = str(row.nearest_id), int(row.nearest_bits)
    exif = row.exif or {}
    return signals.Signals(
        kind=row.kind,
        nsfw=nsfw,
        outside_zone_m=signals.geofence(
            row.lat, row.lng, row.zone_lat, row.zone_lng, row.zone_radius_m, row.accuracy_m
        ),
        gps_accuracy_m=row.accuracy_m,
        duplicate_of=duplicate_of,
        duplicate_distance=distance,
        travel_km=travel_km,
        travel_speed_kmh=speed,
        clock_skew_s=signals.clock_skew(row.captured_at, row.received_at, _taken_at(exif)),
        width=row.width,
        height=row.height,
        sharpness=row.sharpness,
        has_exif=any(exif.get(k) for k in ("make", "model", "taken_at")),
    )


def _decided(event: Event, row: Any, decision: str, score: int | None) -> None:
    log.info("proof verified", territory=event.territory, proof_id=str(row.id), decision=decision, score=score)


async def verify_proof(conn: AsyncConnection, event: Event) -> None:
    started = time.perf_counter()
    # The IPFS read and the model run start at once, overlapping the database round trip.
    safety_check = None
    mime = str(event.data.get("mime", ""))
    if mime.startswith("image/") and event.data.get("cid"):
        safety_check = asyncio.create_task(nsfw_from_ipfs(str(event.data["cid"]), mime))
    try:
        row = await _proof(conn, uuid.UUID(event.data["proof_id"]))
        if row is None or row.status != "submitted":
            return  # already decided (a moderator was quicker) or not ours
        if safety_check is None and row.kind == "image":
            safety_check = asyncio.create_task(nsfw_from_ipfs(row.cid, row.mime, row.size_bytes))
        nsfw = await safety_check if safety_check is not None else None
    finally:
        if safety_check is not None and not safety_check.done():
            safety_check.cancel()
    policy = policy_from(row.policy, VerificationPolicy)
    found = measure(row, nsfw)
    vector = signals.features(found)
    score = model.score(vector, review_model())  # a 10-feature logistic regression: microseconds, no thread
    raised = signals.flags(found)
    decision = model.decide(score, raised, policy.thresholds)
    if decision == "auto_approved" and policy.always_community:
        decision = "needs_community"
    await conn.execute(
        verifications.insert().values(
            proof_id=row.id,
            score=score,
            decision=decision,
            flags=raised,
            signals=_json_signals(found),
            features=vector,
            model=model_name(),
        )
    )
    await lifecycle.verified(conn, row, decision, score, raised)  # type: ignore[arg-type]
    _decided(event, row, decision, score)
    SECONDS.observe(time.perf_counter() - started)


def _json_signals(found: signals.Signals) -> dict[str, Any]:
    """The signals as JSON (an instant jump's infinite speed is stored as null)."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in msgspec.to_builtins(found).items()
    }


async def send_to_people(conn: AsyncConnection, event: Event) -> None:
    """Verification kept failing: a human looks at the proof instead; it is never lost."""
    row = await _proof(conn, uuid.UUID(event.data["proof_id"]))
    if row is None or row.status != "submitted":
        return
    await lifecycle.verified(conn, row, "needs_community", None, ["verification_failed"])
    _decided(event, row, "needs_community", None)


CONSUMERS = [
    Consumer(
        "verification",
        "oh.*.proof.submitted",
        verify_proof,
        # After this many failed runs a proof goes to people instead of being retried for ever.
        max_deliveries=get_settings().verification.max_attempts,
        concurrency=get_settings().verification.concurrency,
        give_up=send_to_people,
    )
]
