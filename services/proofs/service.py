"""A proof's whole life, in one place: every status change of a proof and of its assignment,
with the event each one emits, and the one query that reads a proof with its evidence.

::

    submitted ──verified──> auto_approved ─┬─ (community may still look) ─> validated / invalidated
              │            needs_community ─┴─ community_decided ────────> validated / invalidated
              │            rejected
              └─ paid (the payout is made: paid_at; payout.made)

=================  =========================  =======================  ==================
transition          proof                      assignment               event
=================  =========================  =======================  ==================
:func:`submit`      submitted                  active -> submitted      proof.submitted
:func:`verified`    decision, score, flags     completed (auto) /       proof.verified
                                               failed (rejected)
:func:`community_   validated / invalidated    completed / failed       proof.validated /
decided`                                                                proof.rejected
:func:`paid`        paid_at                    -                        payout.made
=================  =========================  =======================  ==================

Verification, social validation, the impact worker and the Matrix gateway call these; nobody
else writes ``proofs.status`` or ``assignments.status`` of a proof (a test checks).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.db import row_to
from core.errors import AppError, Conflict, InvalidInput, NotFound
from core.events.outbox import emit
from core.evidence import EvidenceStore, allowed_types
from core.geo import check_point, haversine_m
from core.idempotency import answer_once
from core.media import inspect
from core.pagination import decode_time_cursor, time_cursor
from core.settings import Settings
from services.players.service import ensure_player
from services.proofs.dto import EvidenceInfo, Proof, ProofAccepted, ProofForm, QuestPlace
from services.proofs.models import COMMUNITY_VISIBLE, evidence, proofs
from services.quests.models import assignments, quests
from services.zones.models import zones

STAFF = ("moderator", "operator")
Decision = Literal["auto_approved", "needs_community", "rejected"]
Outcome = Literal["validated", "rejected"]
# What a community outcome makes of the proof and of its assignment.
_OUTCOME_STATUS = {"validated": ("validated", "completed"), "rejected": ("invalidated", "failed")}
_DECISION_ASSIGNMENT = {"auto_approved": "completed", "rejected": "failed"}


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lng: float
    accuracy_m: float
    captured_at: datetime


@dataclass(frozen=True, slots=True)
class Measures:
    """What the player declares the good deed measured; it counts in the payout once witnesses
    validate the proof (they saw the claim), never for an automatic approval."""

    duration_minutes: int | None = None
    beneficiaries: int | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """What the evidence store and the media check said about the uploaded bytes."""

    cid: str
    sha256: str
    size_bytes: int
    mime: str
    kind: str
    width: int | None
    height: int | None
    sharpness: float | None
    phash: int | None  # signed 64-bit
    exif: dict[str, Any]


def phash_to_int(hex_hash: str | None) -> int | None:
    """A 64-bit perceptual hash (16 hex digits) as the signed bigint Postgres stores."""
    if not hex_hash:
        return None
    value = int(hex_hash, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


# --- reading ------------------------------------------------------------------------------
_EVIDENCE = ("cid", "sha256", "size_bytes", "mime", "kind", "width", "height", "sharpness", "phash", "exif")


def with_evidence() -> sa.Select[Any]:
    """Every column of a proof and of its evidence, one row per proof: the one query a proof is
    read with. Callers add what they need (``add_columns``, ``join``, ``where``)."""
    return sa.select(proofs, *(evidence.c[name] for name in _EVIDENCE)).select_from(
        proofs.join(evidence, evidence.c.proof_id == proofs.c.id)
    )


def proof_from(row: Any) -> Proof:
    """A proof from a row of :func:`with_evidence`, by column name."""
    return row_to(Proof, row, evidence=row_to(EvidenceInfo, row))


def may_see(identity: Identity, territory: str, proof: Proof) -> bool:
    """The author and the territory's moderators and operators always; other players once the
    community is asked to look at it."""
    if proof.player_id == identity.user_id or any(identity.has(role, territory) for role in STAFF):
        return True
    return proof.status in COMMUNITY_VISIBLE


async def get_proof(conn: AsyncConnection, proof_id: uuid.UUID, identity: Identity, territory: str) -> Proof:
    row = (await conn.execute(with_evidence().where(proofs.c.id == proof_id))).first()
    if row is None:
        raise NotFound(f"proof {proof_id} does not exist in this territory")
    proof = proof_from(row)
    if not may_see(identity, territory, proof):
        # Same answer as a missing proof: whether it exists is not the caller's business.
        raise NotFound(f"proof {proof_id} does not exist in this territory")
    return proof


async def read_evidence(
    conn: AsyncConnection, store: EvidenceStore, proof_id: uuid.UUID, identity: Identity, territory: str
) -> tuple[EvidenceInfo, bytes]:
    """A proof's evidence and its bytes, read back from IPFS and checked against the CID, for
    whoever may see the proof (:func:`get_proof`'s check; 404 for anyone else)."""
    ev = (await get_proof(conn, proof_id, identity, territory)).evidence
    return ev, await store.get(ev.cid, ev.size_bytes)


def evidence_headers(ev: EvidenceInfo, *, with_cid: bool = True) -> dict[str, str]:
    """The headers evidence bytes are served with (the player app's route leaves out the CID)."""
    headers = {
        "ETag": f'"{ev.cid}"',
        "Cache-Control": "private, max-age=3600, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
    }
    if with_cid:
        headers["X-Evidence-CID"] = ev.cid
    return headers


@dataclass(frozen=True, slots=True)
class Where:
    """Where a proof was taken, against its zone (for the words beside a map)."""

    lat: float
    lng: float
    accuracy_m: float
    zone: QuestPlace
    from_centre_m: float

    @property
    def inside(self) -> bool:
        return self.from_centre_m <= self.zone.zone_radius_m


def where(proof: Proof, place: QuestPlace) -> Where:
    """Where ``proof`` was taken: its point, and how far that is from its zone's centre."""
    centre = haversine_m(proof.lat, proof.lng, place.zone_lat, place.zone_lng)
    return Where(proof.lat, proof.lng, proof.accuracy_m, place, centre)


async def quest_places(conn: AsyncConnection, quest_ids: set[uuid.UUID]) -> dict[uuid.UUID, QuestPlace]:
    """The quests of some proofs with their zones (title, zone name, centre, radius)."""
    if not quest_ids:
        return {}
    query = (
        sa.select(
            quests.c.id.label("quest_id"),
            quests.c.title,
            zones.c.id.label("zone_id"),
            zones.c.name.label("zone_name"),
            zones.c.lat.label("zone_lat"),
            zones.c.lng.label("zone_lng"),
            zones.c.radius_m.label("zone_radius_m"),
        )
        .select_from(quests.join(zones, zones.c.id == quests.c.zone_id))
        .where(quests.c.id.in_(list(quest_ids)))
    )
    return {r.quest_id: row_to(QuestPlace, r) for r in await conn.execute(query)}


async def list_proofs(
    conn: AsyncConnection,
    *,
    player_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Proof], str | None]:
    """Proofs, newest first; one player's when ``player_id`` is given."""
    query = with_evidence()
    if player_id is not None:
        query = query.where(proofs.c.player_id == player_id)
    if status is not None:
        query = query.where(proofs.c.status == status)
    if cursor:
        key = decode_time_cursor(cursor)
        query = query.where(sa.tuple_(proofs.c.received_at, proofs.c.id) < key)
    order = (proofs.c.received_at.desc(), proofs.c.id.desc())
    items = [proof_from(r) for r in await conn.execute(query.order_by(*order).limit(limit + 1))]
    more = len(items) > limit
    items = items[:limit]
    return items, (time_cursor(items[-1].received_at, items[-1].id) if more else None)


async def lock_proof(conn: AsyncConnection, proof_id: uuid.UUID) -> Any:
    """The proof's row (id, quest, player, status, assignment, measures), locked until commit."""
    row = (
        await conn.execute(
            sa.select(
                proofs.c.id,
                proofs.c.quest_id,
                proofs.c.player_id,
                proofs.c.status,
                proofs.c.assignment_id,
                proofs.c.duration_minutes,
                proofs.c.beneficiaries,
            )
            .where(proofs.c.id == proof_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"proof {proof_id} does not exist in this territory")
    return row


# --- receiving an upload --------------------------------------------------------------------
class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


def place_of(form: ProofForm) -> Place:
    """Where and when the evidence was taken, as stored; 400 for a value out of range."""
    lat, lng = check_point(form.lat, form.lng)
    if not 0 <= form.accuracy_m <= 100_000:
        raise InvalidInput("accuracy_m must be between 0 and 100000 metres")
    if form.captured_at.tzinfo is None:
        raise InvalidInput("captured_at needs a time zone (e.g. 2026-05-01T09:00:00Z)")
    return Place(lat, lng, round(float(form.accuracy_m), 1), form.captured_at)


def measures_of(form: ProofForm) -> Measures:
    if form.duration_minutes is not None and not 1 <= form.duration_minutes <= 10_080:
        raise InvalidInput("duration_minutes must be between 1 and 10080 (a week)")
    if form.beneficiaries is not None and not 1 <= form.beneficiaries <= 10_000_000:
        raise InvalidInput("beneficiaries must be between 1 and 10000000")
    return Measures(form.duration_minutes, form.beneficiaries)


async def receive(
    tx: AsyncConnection,
    store: EvidenceStore,
    settings: Settings,
    identity: Identity,
    territory: str,
    quest_id: uuid.UUID,
    form: ProofForm,
    idempotency_key: str,
) -> ProofAccepted:
    """A player's upload of evidence for their active assignment, checked before anything is
    stored: the role, place and measures, the size, the real media type and a full decode;
    then the bytes are pinned in IPFS and :func:`submit` writes the proof, all answered once per
    ``idempotency_key`` (the same key and content again gets the first answer; other content,
    422). The JSON API (``POST /api/quests/{id}/proofs``) and the capture page both call it."""
    require_role(identity, "player", territory)
    place, measures = place_of(form), measures_of(form)
    content = await form.file.read()
    await form.file.close()
    if len(content) > settings.evidence.evidence_max_bytes:
        raise PayloadTooLarge(f"evidence is limited to {settings.evidence.evidence_max_bytes} bytes")
    media = await asyncio.to_thread(inspect, content, form.file.content_type, allowed=allowed_types(settings))
    digest = hashlib.sha256(content).hexdigest()
    fingerprint = [
        place.lat,
        place.lng,
        place.accuracy_m,
        place.captured_at.isoformat(),
        digest,
        measures.duration_minutes,
        measures.beneficiaries,
    ]
    stored = Stored(
        "",  # the CID, once IPFS has the bytes
        digest,
        len(content),
        media.mime,
        media.kind,
        media.width,
        media.height,
        media.sharpness,
        phash_to_int(media.phash),
        media.exif,
    )

    async def accept() -> ProofAccepted:
        await ensure_player(tx, identity.user_id)
        assignment = await open_assignment(tx, quest_id, identity.user_id)
        # Pinned before the rows commit: a failure here (IPFS down: 503) rolls everything back.
        cid = await store.put(content)
        return await submit(tx, assignment, quest_id, identity.user_id, place, replace(stored, cid=cid), measures)

    # The key is the caller's: the same key from another player is another request.
    key_scope = ("POST", f"/api/quests/{quest_id}/proofs#{identity.user_id}", fingerprint)
    answer = await answer_once(tx, idempotency_key, key_scope, 202, accept)
    # A replay answers with the stored first answer (JSON): the same proof, as a struct.
    body = answer.content
    return body if isinstance(body, ProofAccepted) else msgspec.convert(body, ProofAccepted)


# --- transitions --------------------------------------------------------------------------
async def open_assignment(conn: AsyncConnection, quest_id: uuid.UUID, player_id: uuid.UUID) -> Any:
    """The player's active assignment for the quest, locked until commit."""
    if (await conn.execute(sa.select(quests.c.id).where(quests.c.id == quest_id))).first() is None:
        raise NotFound(f"quest {quest_id} does not exist in this territory")
    row = (
        await conn.execute(
            sa.select(assignments.c.id, assignments.c.status)
            .where(
                assignments.c.quest_id == quest_id,
                assignments.c.player_id == player_id,
                assignments.c.status.in_(("active", "submitted")),
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise Conflict("start the quest before submitting a proof (POST /api/quests/{id}/start)")
    if row.status == "submitted":
        raise Conflict("a proof for this quest is already being checked")
    return row


async def submit(
    conn: AsyncConnection,
    assignment: Any,
    quest_id: uuid.UUID,
    player_id: uuid.UUID,
    place: Place,
    stored: Stored,
    measures: Measures = Measures(),
) -> ProofAccepted:
    """Proof row, evidence row, assignment ``submitted`` and ``proof.submitted``: one transaction."""
    proof_id = uuid.uuid4()
    await conn.execute(
        proofs.insert().values(
            id=proof_id,
            assignment_id=assignment.id,
            quest_id=quest_id,
            player_id=player_id,
            lat=place.lat,
            lng=place.lng,
            accuracy_m=place.accuracy_m,
            captured_at=place.captured_at,
            duration_minutes=measures.duration_minutes,
            beneficiaries=measures.beneficiaries,
        )
    )
    await conn.execute(
        evidence.insert().values(
            proof_id=proof_id,
            cid=stored.cid,
            sha256=stored.sha256,
            size_bytes=stored.size_bytes,
            mime=stored.mime,
            kind=stored.kind,
            width=stored.width,
            height=stored.height,
            sharpness=stored.sharpness,
            phash=stored.phash,
            exif=stored.exif,
        )
    )
    await conn.execute(
        assignments.update()
        .where(assignments.c.id == assignment.id)
        .values(status="submitted", submitted_at=sa.func.now())
    )
    await emit(
        conn,
        "proof.submitted",
        {
            "proof_id": str(proof_id),
            "quest_id": str(quest_id),
            "player_id": str(player_id),
            "cid": stored.cid,
            "mime": stored.mime,
            "lat": place.lat,
            "lng": place.lng,
            "captured_at": place.captured_at.isoformat(),
        },
    )
    return ProofAccepted(proof_id, stored.cid, "submitted")


async def verified(conn: AsyncConnection, proof: Any, decision: Decision, score: int | None, flags: list[str]) -> None:
    """The verification worker decided (or gave up and sent the proof to people)."""
    await conn.execute(
        proofs.update()
        .where(proofs.c.id == proof.id)
        .values(status=decision, score=score, flags=flags, verified_at=sa.func.now())
    )
    outcome = _DECISION_ASSIGNMENT.get(decision)
    if outcome is not None:
        await conn.execute(
            assignments.update()
            .where(assignments.c.id == proof.assignment_id)
            .values(status=outcome, finished_at=sa.func.now())
        )
    await emit(
        conn,
        "proof.verified",
        {
            "proof_id": str(proof.id),
            "quest_id": str(proof.quest_id),
            "player_id": str(proof.player_id),
            "score": score,
            "flags": flags,
            "decision": decision,
        },
    )


async def community_decided(
    conn: AsyncConnection, proof: Any, outcome: Outcome, *, witnesses: int, agreement: float
) -> None:
    """Witnesses (or a moderator) decided: the proof is validated or invalidated, its
    assignment completed or failed. A validated proof carries the measures the witnesses saw."""
    status, assignment_status = _OUTCOME_STATUS[outcome]
    await conn.execute(proofs.update().where(proofs.c.id == proof.id).values(status=status))
    await conn.execute(
        assignments.update()
        .where(assignments.c.id == proof.assignment_id, assignments.c.status == "submitted")
        .values(status=assignment_status, finished_at=sa.func.now())
    )
    data: dict[str, Any] = {
        "proof_id": str(proof.id),
        "quest_id": str(proof.quest_id),
        "player_id": str(proof.player_id),
        "witnesses": witnesses,
        "agreement": round(min(1.0, max(0.0, agreement)), 4),
    }
    if outcome == "validated":
        for name in ("duration_minutes", "beneficiaries"):
            if getattr(proof, name, None) is not None:
                data[name] = int(getattr(proof, name))
    await emit(conn, f"proof.{outcome}", data)


async def paid(conn: AsyncConnection, proof_id: uuid.UUID, payout: dict[str, Any]) -> None:
    """The impact worker paid the proof: ``paid_at`` and ``payout.made`` (``payout`` is the
    event's data: player, quest, zone, category, xp, tokens, ledger seq, source)."""
    await conn.execute(proofs.update().where(proofs.c.id == proof_id).values(paid_at=sa.func.now()))
    await emit(conn, "payout.made", {"proof_id": str(proof_id), **payout})
