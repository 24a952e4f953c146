"""Community review in the app: ``/app/review`` lists the territory's proofs waiting for
witnesses (evidence, quest, place, capture time), and a witness votes agree / disagree (keys
``a`` / ``d``) through ``POST /app/proofs/{id}/votes``, which calls the function behind
``POST /api/proofs/{id}/votes``. The author sees their own proof listed, without buttons."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import Conflict, InvalidInput, NotFound
from core.pages import page, redirect
from core.routing import Territory
from services.proofs.service import where
from services.social import service
from services.social.dto import ReviewItem

ProofId = Annotated[uuid.UUID, PathParameter(description="The proof")]
PAGE_SIZE = 20
VALUES = ("agree", "disagree")


@dataclass
class VoteForm:
    value: str
    csrf: str = ""


def current_of(items: list[ReviewItem], focus: uuid.UUID | None) -> uuid.UUID | None:
    """The card the keys a / d vote on at first: the one asked for, else the first the player
    may vote on and has not, else the first they may vote on (review.js follows the focus)."""
    votable = [i for i in items if i.cannot_vote is None]
    for item in votable:
        if item.proof.id == focus:
            return item.proof.id
    fresh = next((i for i in votable if i.my_vote is None), None)
    chosen = fresh or (votable[0] if votable else None)
    return chosen.proof.id if chosen else None


class ReviewPages(Controller):
    include_in_schema = False

    @get("/app/review")
    async def review(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        focus: Annotated[uuid.UUID | None, QueryParameter()] = None,
    ) -> Response[Any]:
        queue = await service.review_queue(db, identity, territory, limit=PAGE_SIZE, cursor=cursor)
        items = list(queue.items)
        if focus is not None:  # the proof asked for (from its page, or after a vote) comes first
            asked = [i for i in items if i.proof.id == focus]
            if not asked:
                try:
                    asked = [await service.review_one(db, focus, identity, territory)]
                except (NotFound, Conflict):
                    pass  # decided meanwhile, or not for this player: the queue as it is
            items = asked + [i for i in items if i.proof.id != focus]
        return page(
            request,
            "social/review.html",
            items=items,
            places={i.proof.id: where(i.proof, i.quest) for i in items},
            current=current_of(items, focus),
            next_cursor=queue.next_cursor,
            paged=bool(cursor),
        )

    @post("/app/proofs/{proof_id:uuid}/votes", status_code=303)
    async def vote(
        self,
        request: Request[Any, Any, Any],
        tx: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        proof_id: ProofId,
        data: Annotated[VoteForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Vote (or change one's vote); back to the card, or to the proof once the vote decided it."""
        if data.value not in VALUES:
            raise InvalidInput("a vote is either agree or disagree")
        result = await service.vote(tx, proof_id, identity, territory, data.value)  # type: ignore[arg-type]
        if result.outcome is not None:
            return redirect(request, f"/app/proofs/{proof_id}")
        return redirect(request, f"/app/review?focus={proof_id}#proof-{proof_id}")
