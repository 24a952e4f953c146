"""The player's proofs in the app: ``/app/proofs`` (newest first) and one proof's timeline
(``/app/proofs/{id}``: submitted, checked, the community's votes, the outcome, the payout),
with its evidence served through the node (``/app/proofs/{id}/evidence``) to whoever may see
the proof, by the same check as ``GET /api/proofs/{id}/evidence``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.pages import page
from core.pagination import Cursor, Limit
from core.routing import Territory
from services.impact import service as impact
from services.proofs.models import COMMUNITY_VISIBLE
from services.proofs.service import evidence_headers, get_proof, list_proofs, quest_places, read_evidence, where
from services.social import service as social
from services.verification import service as verification

Db = NamedDependency[AsyncConnection]
ProofId = Annotated[uuid.UUID, PathParameter(description="The proof")]
PAGE_SIZE = 20


class ProofPages(Controller):
    include_in_schema = False

    @get("/app/proofs")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        cursor: Cursor = None,
        limit: Limit = None,
    ) -> Response[Any]:
        """The player's own proofs, newest first (what ``GET /api/proofs?mine=true`` lists)."""
        items, next_cursor = await list_proofs(
            db, player_id=identity.user_id, status=None, limit=limit or PAGE_SIZE, cursor=cursor
        )
        places = await quest_places(db, {p.quest_id for p in items})
        return page(
            request,
            "proofs/list.html",
            proofs=items,
            places=places,
            next_cursor=next_cursor,
            paged=bool(cursor),
            limit=limit,
        )

    @get("/app/proofs/{proof_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
    ) -> Response[Any]:
        """One proof's timeline. Who may not see the proof gets the API's answer (404)."""
        proof = await get_proof(db, proof_id, identity, territory.code)
        place = (await quest_places(db, {proof.quest_id}))[proof.quest_id]
        mine = proof.player_id == identity.user_id
        checked = await verification.verification_of(db, proof)
        decided = await social.decision_of(db, proof.id)
        asked = proof.status in COMMUNITY_VISIBLE or decided is not None
        tally = await social.votes(db, proof.id, territory.matrix_homeserver) if asked else None
        waiting = proof.status == "needs_community" and decided is None
        return page(
            request,
            "proofs/show.html",
            proof=proof,
            place=place,
            where=where(proof, place),
            mine=mine,
            checked=checked,
            tally=tally,
            decided=decided,
            waiting=waiting,
            cannot_vote=social.may_vote(identity, territory.code, proof) if waiting else None,
            my_vote=await social.ballot_of(db, proof.id, identity.user_id) if waiting else None,
            # What it paid is the author's business (and the staff's, through the ledger).
            payout=await impact.payout_of(db, proof.id) if mine else None,
        )

    @get("/app/proofs/{proof_id:uuid}/evidence")
    async def evidence(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
    ) -> Response[bytes]:
        """The evidence bytes for the page's <img>/<video>: the API's function and check."""
        ev, content = await read_evidence(db, request.app.state.evidence, proof_id, identity, territory.code)
        return Response(content, media_type=ev.mime, headers=evidence_headers(ev, with_cid=False))
