"""Auditors' view of a territory's ledger: entries, checkpoints, proofs, export, keys, balances.

Who may read what (the same for ``/api/tokens``):

- The ledger's entries, checkpoints, proofs, keys and export are the territory's public
  record of what was earned and spent: any signed-in user who acts in the territory may read
  them. Entries name accounts by opaque ids (``player:<uuid>``), never by name.
- The balance of a ``player:<id>`` account is private to that player and the territory's
  staff (operator, government, global_admin): anyone else gets 403. The export a non-staff
  caller downloads carries the balance lines of the public accounts and the caller's own
  (its header says ``"balances": "public"``); it verifies all the same, since every balance
  follows from the entries.
- Pool, sponsor, mint and burn balances are public.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import territory_errors
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from core.text import NO_NUL
from services.ledger import service
from services.ledger.canonical import ACCOUNT, REF_TYPE
from services.ledger.dto import (
    Balance,
    CheckpointPage,
    ConsistencyProofOut,
    EntryPage,
    InclusionProofOut,
    LedgerCheckpoint,
    LedgerEntry,
    PublicKeys,
)
from services.ledger.service import LedgerExports

Seq = Annotated[int, QueryParameter(ge=1, le=2**62)]
TreeSize = Annotated[int, QueryParameter(ge=1, le=2**62, description="A checkpoint's tree size")]
Kind = Literal["mint", "transfer", "burn", "adjust"]  # canonical.KINDS
AccountParam = Annotated[
    str | None, QueryParameter(pattern=ACCOUNT.pattern, description="Entries debiting or crediting this account")
]
NDJSON = "application/x-ndjson"
Db = NamedDependency[AsyncConnection]
READ_ERRORS = territory_errors()
# Proofs and consistency: 409 when the ledger's stored hashes are damaged.
PROOF_ERRORS = territory_errors(409)


def provide_exports(request: Request[Any, Any, Any], router: NamedDependency[Router]) -> LedgerExports:
    return LedgerExports(router, request.app.state.settings)


class LedgerController(Controller):
    path = "/api/ledger"
    tags = ["ledger"]
    dependencies = {"exports": Provide(provide_exports, sync_to_thread=False)}

    @get(responses=READ_ERRORS, summary="Ledger entries, oldest first (order=desc: newest first)")
    async def entries(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        account: AccountParam = None,
        kind: Annotated[Kind | None, QueryParameter()] = None,
        ref_type: Annotated[str | None, QueryParameter(pattern=REF_TYPE.pattern)] = None,
        ref_id: Annotated[str | None, QueryParameter(min_length=1, max_length=128, pattern=NO_NUL)] = None,
        from_seq: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        to_seq: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        order: Annotated[Literal["asc", "desc"], QueryParameter(description="By sequence number")] = "asc",
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> EntryPage:
        items, next_cursor = await service.list_entries(
            db,
            limit=page_size(request, limit),
            cursor=cursor,
            account=account,
            kind=kind,
            ref_type=ref_type,
            ref_id=ref_id,
            from_seq=from_seq,
            to_seq=to_seq,
            newest_first=order == "desc",
        )
        return EntryPage([LedgerEntry.of(e) for e in items], next_cursor)

    @get(
        "/checkpoints",
        responses=READ_ERRORS,
        summary="Signed checkpoints (Merkle roots), newest first",
    )
    async def checkpoints(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> CheckpointPage:
        items, next_cursor = await service.list_checkpoints(db, limit=page_size(request, limit), cursor=cursor)
        return CheckpointPage([LedgerCheckpoint.of(c) for c in items], next_cursor)

    @get(
        "/entries/{seq:int}/proof",
        responses=PROOF_ERRORS,
        summary="Inclusion proof of an entry in a checkpoint (default: the latest)",
    )
    async def proof(
        self,
        db: Db,
        territory: NamedDependency[Territory],
        seq: Annotated[int, PathParameter(ge=1, le=2**62)],
        tree_size: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
    ) -> InclusionProofOut:
        return InclusionProofOut.of(await service.inclusion_proof(db, territory.code, seq, tree_size))

    @get(
        "/consistency",
        responses=PROOF_ERRORS,
        summary="Consistency proof between two checkpoints",
    )
    async def consistency(
        self,
        db: Db,
        territory: NamedDependency[Territory],
        first: Annotated[int, QueryParameter(name="from", ge=1, le=2**62, description="The older checkpoint's size")],
        second: Annotated[int, QueryParameter(name="to", ge=1, le=2**62, description="The newer checkpoint's size")],
    ) -> ConsistencyProofOut:
        old, new, path = await service.consistency_proof(db, territory.code, first, second)
        return ConsistencyProofOut(LedgerCheckpoint.of(old), LedgerCheckpoint.of(new), [h.hex() for h in path])

    @get(
        "/export",
        responses=READ_ERRORS,
        summary="Every entry, checkpoint and balance as JSON lines, from one snapshot",
        description="Verify it offline with `oneheart ledger verify CODE --from-export FILE`.",
        media_type=NDJSON,
    )
    async def export(
        self,
        exports: NamedDependency[LedgerExports],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Stream:
        # The snapshot is open before we answer: an unavailable server is a 503, not a cut stream.
        lines = await exports.open(territory, identity)
        return Stream(
            lines,
            media_type=NDJSON,
            headers={"Content-Disposition": f'attachment; filename="ledger-{territory.code}.jsonl"'},
        )

    @get(
        "/keys",
        responses=READ_ERRORS,
        summary="Public keys that sign this territory's checkpoints",
    )
    async def keys(self, request: Request[Any, Any, Any], territory: NamedDependency[Territory]) -> PublicKeys:
        return service.published_keys(request.app.state.settings, territory.code)

    @get(
        "/balances/{account:str}",
        responses=READ_ERRORS,
        summary="An account's balance (tokens and XP); a player's only for that player and staff",
    )
    async def balance(
        self,
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        account: Annotated[str, PathParameter(pattern=ACCOUNT.pattern)],
    ) -> Balance:
        service.check_balance_reader(identity, territory.code, account)
        tokens, xp = await service.get_balance(db, account)
        return Balance(account, tokens, xp)
