from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import territory_errors
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from services.proofs.service import get_proof
from services.social import service
from services.social.dto import LinkCode, MatrixLink, ReviewPage, SettleIn, VoteIn, Votes

ProofId = Annotated[uuid.UUID, PathParameter(description="The proof")]


class SocialController(Controller):
    tags = ["social"]

    @get(
        "/api/proofs/{proof_id:uuid}/votes",
        responses=territory_errors(),
        summary="Votes on a proof and where the quorum stands",
    )
    async def votes(
        self,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
        db: NamedDependency[AsyncConnection],
    ) -> Votes:
        await get_proof(db, proof_id, identity, territory.code)  # 404 for who may not see it
        return await service.votes(db, proof_id, territory.matrix_homeserver)

    @post(
        "/api/proofs/{proof_id:uuid}/votes",
        status_code=200,
        responses=territory_errors(400, 409),
        summary="Vote as a witness (agree / disagree); a second vote replaces the first",
        description="Players of the territory, not the proof's author. Reaching the territory's quorum "
        "(GET /api/proofs/{id}/votes shows it) validates or rejects the proof.",
    )
    async def vote(
        self,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
        data: JSONBody[VoteIn],
        tx: NamedDependency[AsyncConnection],
    ) -> Votes:
        return await service.vote(tx, proof_id, identity, territory, data.value)

    @get(
        "/api/social/review",
        responses=territory_errors(),
        summary="Proofs of the territory waiting for witnesses, newest first",
        description="Each with its quest and zone, where its quorum stands, the caller's own vote and, "
        "when the caller may not vote on it, why (`author`, `no_role`).",
    )
    async def review(
        self,
        request: Request[Any, Any, Any],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        db: NamedDependency[AsyncConnection],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ReviewPage:
        return await service.review_queue(db, identity, territory, limit=page_size(request, limit), cursor=cursor)

    @post(
        "/api/proofs/{proof_id:uuid}/settle",
        status_code=200,
        responses=territory_errors(400, 409),
        summary="Settle a proof as a moderator (a dispute, or too few witnesses)",
    )
    async def settle(
        self,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
        data: JSONBody[SettleIn],
        tx: NamedDependency[AsyncConnection],
    ) -> Votes:
        require_role(identity, "moderator", territory.code)
        await service.settle(tx, proof_id, data.outcome, identity.user_id, data.reason)
        return await service.votes(tx, proof_id, territory.matrix_homeserver)

    @post(
        "/api/social/link-code",
        status_code=201,
        responses=territory_errors(),
        summary="A one-time code that links a Matrix account to the caller's player",
        description="Send `!link CODE` to the territory's bot in a direct message, or post it in a zone room, "
        "from the Matrix account to link (any homeserver). Users who sign in to the territory's own homeserver "
        "with single sign-on are linked without a code.",
    )
    async def link_code(
        self,
        request: Request[Any, Any, Any],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        tx: NamedDependency[AsyncConnection],
    ) -> LinkCode:
        return await service.link_code(tx, identity, territory, request.app.state.settings.matrix.link_code_ttl)

    @get(
        "/api/social/links",
        responses=territory_errors(),
        summary="The Matrix accounts linked to the caller's player",
    )
    async def links(
        self,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        db: NamedDependency[AsyncConnection],
    ) -> list[MatrixLink]:
        return [MatrixLink(r.mxid, r.via, r.linked_at) for r in await service.links_of(db, identity.user_id)]
