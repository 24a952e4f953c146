"""What the verification worker found about a proof, flag by flag, with the numbers behind each
flag (read from the signals it stored), so that a page can say it in plain words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.proofs.dto import Proof
from services.proofs.models import verifications
from services.verification import signals as sig
from services.verification.dto import FlagNote, Number, Verification

FAILED = "verification_failed"  # the checks kept failing; people look at the proof instead


def weight_of(flag: str) -> str:
    if flag in sig.HARD:
        return "hard"
    if flag in sig.QUALITY:
        return "quality"
    return "review"


def _taken_at(exif: dict[str, Any]) -> datetime | None:
    try:
        taken = datetime.fromisoformat(str(exif["taken_at"])) if exif.get("taken_at") else None
    except (TypeError, ValueError):
        return None
    if taken is not None and taken.tzinfo is None:
        taken = taken.replace(tzinfo=UTC)  # a camera's local time: good to the day, which is what is said
    return taken


def _clock(proof: Proof, skew_s: float | None) -> tuple[str, dict[str, Number]]:
    """Which clock disagrees, and by how much (seconds)."""
    ahead = (proof.captured_at - proof.received_at).total_seconds()
    if ahead > sig.CLOCK_SKEW_MAX_S:
        return "clock_ahead", {"seconds": ahead}
    taken = _taken_at(proof.evidence.exif or {})
    if taken is not None:
        if taken < proof.captured_at:
            return "clock_camera_earlier", {"seconds": (proof.received_at - taken).total_seconds()}
        return "clock_camera_later", {"seconds": (taken - proof.captured_at).total_seconds()}
    return "clock_skew", {"seconds": skew_s}


def explain(proof: Proof, flags: list[str], signals: dict[str, Any]) -> list[FlagNote]:
    """Each flag with the sentence to say and its numbers (signals as the worker stored them)."""
    s = signals
    notes = []
    for flag in flags:
        says, numbers = flag, {}
        if flag == "nsfw":
            numbers = {"probability": s.get("nsfw")}
        elif flag == "outside_zone":
            metres = s.get("outside_zone_m")
            numbers = {"m": metres, "km": metres / 1000 if metres is not None else None}
        elif flag == "duplicate":
            bits = s.get("duplicate_distance")
            says = "duplicate_same" if bits == 0 else "duplicate_similar"
            numbers = {"bits": bits}
        elif flag == "impossible_travel":
            speed = s.get("travel_speed_kmh")
            says = "impossible_travel" if speed is not None else "impossible_travel_instant"
            numbers = {"km": s.get("travel_km"), "kmh": speed}
        elif flag == "clock_skew":
            says, numbers = _clock(proof, s.get("clock_skew_s"))
        elif flag == "low_resolution":
            numbers = {"width": s.get("width"), "height": s.get("height"), "min_side": sig.MIN_SIDE}
        elif flag == "blurry":
            numbers = {"sharpness": s.get("sharpness"), "sharp_from": sig.BLUR_MAX}
        elif flag == "poor_gps_accuracy":
            numbers = {"m": s.get("gps_accuracy_m", proof.accuracy_m), "max": sig.POOR_ACCURACY_M}
        elif flag not in sig.FLAGS and flag != FAILED:
            says = "other"
        notes.append(FlagNote(flag, says, weight_of(flag), numbers))
    return notes


async def verification_of(conn: AsyncConnection, proof: Proof) -> Verification | None:
    """The verification of a proof the caller may see (read it with ``get_proof`` first); None
    while it is still being checked."""
    row = (await conn.execute(sa.select(verifications).where(verifications.c.proof_id == proof.id))).first()
    if row is not None:
        flags = list(row.flags)
        return Verification(
            row.score, row.decision, flags, explain(proof, flags, row.signals or {}), row.model, row.created_at
        )
    if proof.verified_at is None:
        return None
    # Sent to people without a stored verification (the checks kept failing).
    decision = proof.status if proof.status in ("auto_approved", "needs_community", "rejected") else "needs_community"
    flags = list(proof.flags)
    return Verification(proof.score, decision, flags, explain(proof, flags, {}), None, proof.verified_at)
