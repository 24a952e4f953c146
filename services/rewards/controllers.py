from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import territory_errors
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Territory
from services.rewards import service
from services.rewards.dto import Redemption, RedemptionPage, Reward, RewardIn, RewardPage, RewardPatch

READ_ERRORS = territory_errors()
# Writes: 422 an Idempotency-Key reused for another request, 409 a purchase refused.
CREATE_ERRORS = territory_errors(422)
REDEEM_ERRORS = territory_errors(409, 422)
Db = NamedDependency[AsyncConnection]
Tx = NamedDependency[AsyncConnection]
RewardId = Annotated[uuid.UUID, PathParameter()]


class RewardController(Controller):
    path = "/api/rewards"
    tags = ["rewards"]

    @get(responses=READ_ERRORS, summary="Rewards on offer (operators may include withdrawn ones)")
    async def list(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        include_inactive: Annotated[bool, QueryParameter(description="Also withdrawn rewards")] = False,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RewardPage:
        items, next_cursor = await service.list_rewards(
            db, active_only=not include_inactive, limit=page_size(request, limit), cursor=cursor
        )
        return RewardPage(items, next_cursor)

    @post(
        status_code=201,
        responses=CREATE_ERRORS,
        summary="List a reward with a price in tokens and a stock (operators)",
    )
    async def create(
        self,
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[RewardIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Reward]:
        require_role(identity, "operator", territory.code)
        request_key = ("POST", "/api/rewards", msgspec.to_builtins(data))
        return await answer_once(
            tx, idempotency_key, request_key, 201, lambda: service.create_reward(tx, data, identity.user_id)
        )

    @get("/redemptions", responses=READ_ERRORS, summary="The caller's redemptions, newest first")
    async def redemptions(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RedemptionPage:
        items, next_cursor = await service.list_redemptions(
            db, identity.user_id, limit=page_size(request, limit), cursor=cursor
        )
        return RedemptionPage(items, next_cursor)

    @get("/{reward_id:uuid}", responses=READ_ERRORS, summary="One reward")
    async def show(self, db: Db, reward_id: RewardId) -> Reward:
        return await service.get_reward(db, reward_id)

    @patch(
        "/{reward_id:uuid}",
        responses=READ_ERRORS,
        summary="Change a reward, withdraw it (active=false) or add stock (operators)",
    )
    async def update(
        self,
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        reward_id: RewardId,
        data: JSONBody[RewardPatch],
    ) -> Reward:
        require_role(identity, "operator", territory.code)
        return await service.update_reward(tx, reward_id, data)

    @post(
        "/{reward_id:uuid}/redeem",
        status_code=201,
        responses=REDEEM_ERRORS,
        summary="Redeem a reward: burns its price from the caller and takes one unit of stock, atomically",
        description="409 `out_of_stock`, `reward_inactive` or `insufficient_funds`; then nothing changed. "
        "With an Idempotency-Key a retry replays the first success instead of buying twice.",
    )
    async def redeem(
        self,
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        reward_id: RewardId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Redemption]:
        return await service.redeem_once(tx, identity, territory.code, reward_id, idempotency_key)
