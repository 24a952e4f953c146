"""The rewards marketplace in the player app (``/app/rewards``): what is on offer, redeeming with
a confirmation step, and the player's redemptions with the voucher code they show.

``GET /app/rewards/{id}/redeem`` asks "Redeem Ferry ticket for 25 Heart tokens?" (nothing is
taken yet) with a fresh idempotency key; ``POST`` (Confirm) redeems through
:func:`services.rewards.service.redeem_once`, the API's own path, so a double submit buys once.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import AppError
from core.pages import page, redirect, refusals
from core.pagination import Cursor
from core.routing import Territory
from services.ledger import service as ledger
from services.rewards import service
from services.rewards.dto import Redemption

Db = NamedDependency[AsyncConnection]
Tx = NamedDependency[AsyncConnection]
RewardId = Annotated[uuid.UUID, PathParameter()]
PAGE_SIZE = 24
# Refusals explained in the reader's language (rewards/refused.html); the rest: the kit's page.
# The marketplace's links carry a nonce; the confirmation's idempotency key is made from it, so
# the same confirmation (a double click, Back and Confirm again) is one redemption.
Nonce = Annotated[str | None, QueryParameter(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
REFUSALS = frozenset({"out_of_stock", "reward_inactive", "insufficient_funds", "idempotency_key_reused", "not_found"})


refused_page = refusals("rewards/refused.html", REFUSALS)


class RewardPages(Controller):
    include_in_schema = False
    exception_handlers = {AppError: refused_page}

    @get("/app/rewards")
    async def market(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        cursor: Cursor = None,
    ) -> Response[Any]:
        """Rewards on offer, their price and stock, and what the player can afford."""
        items, next_cursor = await service.list_rewards(db, active_only=True, limit=PAGE_SIZE, cursor=cursor)
        tokens, _ = await ledger.get_balance(db, ledger.player_account(identity.user_id))
        return page(
            request,
            "rewards/market.html",
            rewards=items,
            tokens=tokens,
            next_cursor=next_cursor,
            first_page=cursor is None,
            nonces={r.id: secrets.token_urlsafe(18) for r in items},
        )

    @get("/app/rewards/{reward_id:uuid}/redeem")
    async def review(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        reward_id: RewardId,
        nonce: Nonce = None,
    ) -> Response[Any]:
        """The confirmation step: nothing is taken yet."""
        reward, tokens = await service.preview_redeem(db, reward_id, identity.user_id)
        key = f"web-{nonce or secrets.token_urlsafe(18)}"
        return page(request, "rewards/confirm.html", reward=reward, tokens=tokens, key=key)

    @post("/app/rewards/{reward_id:uuid}/redeem")
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        reward_id: RewardId,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Confirm: redeem once per key (the API's redeem_once)."""
        key = data.get("key") or None
        answer = await service.redeem_once(tx, identity, territory.code, reward_id, key)
        made = service.redemption_of(answer)
        replayed = not isinstance(answer.content, Redemption)  # the key's first answer, bought before
        return redirect(request, f"/app/rewards/mine?new={made.id}" + ("&again=1" if replayed else ""))

    @get("/app/rewards/mine")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        cursor: Cursor = None,
        new: Annotated[uuid.UUID | None, QueryParameter()] = None,
        again: Annotated[bool, QueryParameter()] = False,
    ) -> Response[Any]:
        """The player's redemptions, newest first, each with its voucher code."""
        items, next_cursor = await service.list_redemptions(db, identity.user_id, limit=PAGE_SIZE, cursor=cursor)
        titles = await service.titles(db, {r.reward_id for r in items})
        fresh = next((r for r in items if r.id == new), None) if new else None
        return page(
            request,
            "rewards/mine.html",
            redemptions=items,
            titles=titles,
            fresh=fresh,
            again=again,
            next_cursor=next_cursor,
            first_page=cursor is None,
        )
