from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import error_responses, territory_errors
from core.idempotency import IdempotencyKey, answer_once
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.ledger.canonical import ACCOUNT
from services.ledger.service import check_balance_reader, player_account
from services.tokens import service
from services.tokens.dto import (
    Balance,
    Contribution,
    ContributionIn,
    ContributionPage,
    GlobalPool,
    Pool,
    Pools,
    Transfer,
    TransferIn,
)
from services.tokens.service import GlobalPools

READ_ERRORS = territory_errors()
WRITE_ERRORS = territory_errors(409, 422)
# The global pool reads every territory's ledger, not the caller's: no X-Territory, so no 403/404/423.
GLOBAL_ERRORS = error_responses(401, 429, 503)
Db = NamedDependency[AsyncConnection]
Tx = NamedDependency[AsyncConnection]
RequiredKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key", max_length=255, description="Required: a retry with the same key replays the answer"
    ),
]


def provide_global_pools(router: NamedDependency[Router]) -> GlobalPools:
    return GlobalPools(router)


class TokenController(Controller):
    path = "/api/tokens"
    tags = ["tokens"]

    @get(
        "/balance",
        responses=READ_ERRORS,
        summary="The caller's tokens and XP, or a public account's (another player's: staff only)",
        description="Who may read which balance: see the ledger API (`GET /api/ledger/balances/{account}`).",
    )
    async def balance(
        self,
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        account: Annotated[
            str | None,
            QueryParameter(
                pattern=ACCOUNT.pattern, description="Another account, e.g. pool:territory (another player's: staff)"
            ),
        ] = None,
    ) -> Balance:
        account = account or player_account(identity.user_id)
        check_balance_reader(identity, territory.code, account)
        return await service.balance(db, account)

    @post(
        "/transfer",
        status_code=201,
        responses=WRITE_ERRORS,
        summary="Send tokens to another player (Idempotency-Key required)",
        description="409 `insufficient_funds` when the sender has too few tokens; nothing moves then.",
    )
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: JSONBody[TransferIn],
        idempotency_key: RequiredKey,
    ) -> Response[Transfer]:
        most = request.app.state.settings.economy.token_transfer_max
        return await service.transfer_once(tx, identity, territory.code, data, idempotency_key, most=most)


class PoolController(Controller):
    path = "/api/pools"
    tags = ["tokens"]
    dependencies = {"pools": Provide(provide_global_pools, sync_to_thread=False)}

    @get(
        responses=READ_ERRORS,
        summary="This territory's pools and their tokens",
    )
    async def list(self, db: Db) -> Pools:
        return await service.pools(db)

    @get(
        "/global",
        responses=GLOBAL_ERRORS,
        summary="The global pool: every territory's pool:global share, summed across the registry",
        description="Each territory's ledger holds its own share; a share is spent only in its territory. "
        "Territories on a database server that is down are listed under `unavailable` and left out of the sum.",
    )
    async def global_pool(self, pools: NamedDependency[GlobalPools], identity: NamedDependency[Identity]) -> GlobalPool:
        return await pools.global_pool()

    @post(
        "/{pool:str}/contributions",
        status_code=201,
        responses=WRITE_ERRORS,
        summary="Contribute tokens to a pool (sponsors)",
        description="Mints the tokens into `pool:<pool>` of this territory's ledger; the entry's memo names the "
        "sponsor. The real-world money behind it is settled outside the ledger.",
    )
    async def contribute(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        pool: Annotated[Pool, PathParameter()],
        data: JSONBody[ContributionIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Contribution]:
        require_role(identity, "sponsor", territory.code)
        most = request.app.state.settings.economy.pool_contribution_max
        body = {"from": str(identity.user_id), **msgspec.to_builtins(data)}
        return await answer_once(
            tx,
            idempotency_key,
            ("POST", f"/api/pools/{pool}/contributions", body),
            201,
            lambda: service.contribute(tx, identity.user_id, pool, data, most=most),
        )

    @get(
        "/{pool:str}/contributions",
        responses=READ_ERRORS,
        summary="A pool's contributions, newest first",
    )
    async def contributions(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        pool: Annotated[Pool, PathParameter()],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ContributionPage:
        items, next_cursor = await service.list_contributions(db, pool, limit=page_size(request, limit), cursor=cursor)
        return ContributionPage(items, next_cursor)
