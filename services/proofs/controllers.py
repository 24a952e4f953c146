from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import OpenAPIMediaType, Operation, Schema
from litestar.params import Body, HeaderParameter, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import AppError, Forbidden, InvalidInput, territory_errors
from core.evidence import allowed_types
from core.geo import check_point
from core.http import EVIDENCE_UPLOAD
from core.idempotency import answer_once
from core.media import inspect
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from core.settings import get_settings
from services.players.service import ensure_player
from services.proofs.dto import Proof, ProofAccepted, ProofPage
from services.proofs.service import (
    STAFF,
    Measures,
    Place,
    Stored,
    evidence_headers,
    get_proof,
    list_proofs,
    open_assignment,
    phash_to_int,
    read_evidence,
    submit,
)

ProofStatus = Literal["submitted", "auto_approved", "needs_community", "rejected", "validated", "invalidated"]
READ_ERRORS = territory_errors()
SUBMIT_ERRORS = territory_errors(409, 413, 415, 422)


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


@dataclass
class ProofForm:
    """multipart/form-data: one photo or short video, where and when it was taken, and
    optionally what the deed measured (minutes spent, people helped)."""

    file: UploadFile
    lat: float
    lng: float
    accuracy_m: float
    captured_at: datetime
    duration_minutes: int | None = None
    beneficiaries: int | None = None


def _place(form: ProofForm) -> Place:
    lat, lng = check_point(form.lat, form.lng)
    if not 0 <= form.accuracy_m <= 100_000:
        raise InvalidInput("accuracy_m must be between 0 and 100000 metres")
    if form.captured_at.tzinfo is None:
        raise InvalidInput("captured_at needs a time zone (e.g. 2026-05-01T09:00:00Z)")
    return Place(lat, lng, round(float(form.accuracy_m), 1), form.captured_at)


def _measures(form: ProofForm) -> Measures:
    if form.duration_minutes is not None and not 1 <= form.duration_minutes <= 10_080:
        raise InvalidInput("duration_minutes must be between 1 and 10080 (a week)")
    if form.beneficiaries is not None and not 1 <= form.beneficiaries <= 10_000_000:
        raise InvalidInput("beneficiaries must be between 1 and 10000000")
    return Measures(form.duration_minutes, form.beneficiaries)


@dataclass
class EvidenceOperation(Operation):
    """The evidence answers with the type sniffed from its bytes at upload: document each one."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if ok is not None and not isinstance(ok, str) and hasattr(ok, "content"):
            binary = Schema(type="string", format="binary")  # type: ignore[arg-type]
            ok.content = {mime: OpenAPIMediaType(schema=binary) for mime in sorted(allowed_types(get_settings()))}


class ProofController(Controller):
    tags = ["proofs"]

    @post(
        "/api/quests/{quest_id:uuid}/proofs",
        status_code=202,
        opt={"body_limit": EVIDENCE_UPLOAD},
        responses=SUBMIT_ERRORS,
        summary="Submit a proof (photo or short video) for the caller's active assignment",
        description="The bytes are pinned in IPFS (CIDv1, raw leaves) and checked by the verification worker. "
        "Send an Idempotency-Key: a retried upload with the same key gets the first answer. Optional "
        "`duration_minutes` and `beneficiaries` say what the deed measured; they raise the payout once "
        "witnesses validate the proof.",
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        tx: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
        data: Annotated[ProofForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", max_length=255, description="Required; replays the answer")
        ],
    ) -> Response[ProofAccepted]:
        require_role(identity, "player", territory.code)
        settings = request.app.state.settings
        place, measures = _place(data), _measures(data)
        content = await data.file.read()
        await data.file.close()
        if len(content) > settings.evidence.evidence_max_bytes:
            raise PayloadTooLarge(f"evidence is limited to {settings.evidence.evidence_max_bytes} bytes")
        media = await asyncio.to_thread(inspect, content, data.file.content_type, allowed=allowed_types(settings))
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
            cid = await request.app.state.evidence.put(content)
            return await submit(tx, assignment, quest_id, identity.user_id, place, replace(stored, cid=cid), measures)

        # The key is the caller's: the same key from another player is another request.
        key_scope = ("POST", f"/api/quests/{quest_id}/proofs#{identity.user_id}", fingerprint)
        return await answer_once(tx, idempotency_key, key_scope, 202, accept)

    @get("/api/proofs", responses=READ_ERRORS, summary="List proofs, newest first")
    async def list(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        mine: Annotated[bool, QueryParameter(description="false: all proofs (moderators, operators)")] = True,
        status: Annotated[ProofStatus | None, QueryParameter()] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ProofPage:
        if not mine and not any(identity.has(role, territory.code) for role in STAFF):
            raise Forbidden("listing other players' proofs needs the moderator or operator role")
        items, next_cursor = await list_proofs(
            db,
            player_id=identity.user_id if mine else None,
            status=status,
            limit=page_size(request, limit),
            cursor=cursor,
        )
        return ProofPage(items, next_cursor)

    @get("/api/proofs/{proof_id:uuid}", responses=READ_ERRORS, summary="One proof")
    async def show(
        self,
        db: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Proof:
        return await get_proof(db, proof_id, identity, territory.code)

    @get(
        "/api/proofs/{proof_id:uuid}/evidence",
        responses=READ_ERRORS,
        summary="The evidence bytes, read from IPFS and checked against the CID",
        description="Answers with the media type sniffed from the bytes at upload (one of the node's evidence types).",
        operation_class=EvidenceOperation,
    )
    async def evidence(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[bytes]:
        ev, content = await read_evidence(db, request.app.state.evidence, proof_id, identity, territory.code)
        return Response(content, media_type=ev.mime, headers=evidence_headers(ev))
