from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import Conflict, NotFound
from core.events.outbox import emit
from core.pagination import decode_time_cursor, time_cursor
from services.proofs.dto import EvidenceInfo, Proof, ProofAccepted
from services.proofs.models import COMMUNITY_VISIBLE, evidence, proofs
from services.quests.models import assignments, quests

STAFF = ("moderator", "operator")


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lng: float
    accuracy_m: float
    captured_at: datetime


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


async def record_proof(
    conn: AsyncConnection,
    territory: str,
    assignment: Any,
    quest_id: uuid.UUID,
    player_id: uuid.UUID,
    place: Place,
    stored: Stored,
) -> ProofAccepted:
    """Proof row, evidence row, assignment status and ``proof.submitted``: one transaction."""
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


_PROOF = sa.select(
    proofs.c.id,
    proofs.c.quest_id,
    proofs.c.assignment_id,
    proofs.c.player_id,
    proofs.c.status,
    proofs.c.lat,
    proofs.c.lng,
    proofs.c.accuracy_m,
    proofs.c.captured_at,
    proofs.c.received_at,
    proofs.c.score,
    proofs.c.flags,
    proofs.c.verified_at,
    evidence.c.cid,
    evidence.c.sha256,
    evidence.c.size_bytes,
    evidence.c.mime,
    evidence.c.kind,
    evidence.c.width,
    evidence.c.height,
    evidence.c.exif,
).select_from(proofs.join(evidence, evidence.c.proof_id == proofs.c.id))


def _proof(row: Any) -> Proof:
    return Proof(*row[:13], EvidenceInfo(*row[13:]))  # type: ignore[call-arg]  # 13 columns, then the evidence


def may_see(identity: Identity, territory: str, proof: Proof) -> bool:
    """The author and the territory's moderators and operators always; other players once the
    community is asked to look at it."""
    if proof.player_id == identity.user_id or any(identity.has(role, territory) for role in STAFF):
        return True
    return proof.status in COMMUNITY_VISIBLE


async def get_proof(conn: AsyncConnection, proof_id: uuid.UUID, identity: Identity, territory: str) -> Proof:
    row = (await conn.execute(_PROOF.where(proofs.c.id == proof_id))).first()
    if row is None:
        raise NotFound(f"proof {proof_id} does not exist in this territory")
    proof = _proof(row)
    if not may_see(identity, territory, proof):
        # Same answer as a missing proof: whether it exists is not the caller's business.
        raise NotFound(f"proof {proof_id} does not exist in this territory")
    return proof


async def list_proofs(
    conn: AsyncConnection,
    *,
    player_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Proof], str | None]:
    """Proofs, newest first; one player's when ``player_id`` is given."""
    query = _PROOF
    if player_id is not None:
        query = query.where(proofs.c.player_id == player_id)
    if status is not None:
        query = query.where(proofs.c.status == status)
    if cursor:
        key = decode_time_cursor(cursor)
        query = query.where(sa.tuple_(proofs.c.received_at, proofs.c.id) < key)
    order = (proofs.c.received_at.desc(), proofs.c.id.desc())
    items = [_proof(r) for r in await conn.execute(query.order_by(*order).limit(limit + 1))]
    more = len(items) > limit
    items = items[:limit]
    return items, (time_cursor(items[-1].received_at, items[-1].id) if more else None)
