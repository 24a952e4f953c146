from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import OpenAPIMediaType, Operation, Schema
from litestar.params import Body, HeaderParameter, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import Forbidden, territory_errors
from core.evidence import allowed_types
from core.http import EVIDENCE_UPLOAD
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from core.settings import get_settings
from services.proofs.dto import Proof, ProofAccepted, ProofForm, ProofPage
from services.proofs.service import STAFF, evidence_headers, get_proof, list_proofs, read_evidence, receive

ProofStatus = Literal["submitted", "auto_approved", "needs_community", "rejected", "validated", "invalidated"]
READ_ERRORS = territory_errors()
SUBMIT_ERRORS = territory_errors(409, 413, 415, 422)


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
        state = request.app.state
        accepted = await receive(
            tx, state.evidence, state.settings, identity, territory.code, quest_id, data, idempotency_key
        )
        return Response(accepted, status_code=202)

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
