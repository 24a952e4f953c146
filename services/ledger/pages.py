"""The ledger's data for the wallet's "Verify this entry" (``/app/wallet/ledger/...``).

The browser checks an entry's inclusion proof itself (``node/static/verify.js``), but it holds
no bearer token for the JSON API: these routes serve the same DTOs, from the same service
functions, as ``GET /api/ledger/checkpoints``, ``/api/ledger/entries/{seq}/proof`` and
``/api/ledger/keys``, to the signed-in browser session. Like the API, they are the territory's
public record (any signed-in player of the territory may read them).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.routing import Territory
from services.ledger import service
from services.ledger.dto import CheckpointPage, InclusionProofOut, LedgerCheckpoint, PublicKeys

Db = NamedDependency[AsyncConnection]
NO_STORE = {"Cache-Control": "no-store"}


class LedgerPages(Controller):
    include_in_schema = False

    @get("/app/wallet/ledger/checkpoints", response_headers=NO_STORE)
    async def checkpoints(
        self,
        db: Db,
        limit: Annotated[int, QueryParameter(ge=1, le=50)] = 1,
    ) -> CheckpointPage:
        """The newest signed checkpoints (default: only the newest)."""
        items, next_cursor = await service.list_checkpoints(db, limit=limit)
        return CheckpointPage([LedgerCheckpoint.of(c) for c in items], next_cursor)

    @get("/app/wallet/ledger/entries/{seq:int}/proof", response_headers=NO_STORE)
    async def proof(
        self,
        db: Db,
        territory: NamedDependency[Territory],
        seq: Annotated[int, PathParameter(ge=1, le=2**62)],
        tree_size: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
    ) -> InclusionProofOut:
        """The entry's audit path in checkpoint ``tree_size`` (default: the newest)."""
        return InclusionProofOut.of(await service.inclusion_proof(db, territory.code, seq, tree_size))

    @get("/app/wallet/ledger/keys", response_headers=NO_STORE)
    async def keys(self, request: Request[Any, Any, Any], territory: NamedDependency[Territory]) -> PublicKeys:
        """The public keys that sign the territory's checkpoints."""
        return service.published_keys(request.app.state.settings, territory.code)
