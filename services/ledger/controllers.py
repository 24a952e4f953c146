"""Auditors' view of a territory's ledger: entries, checkpoints, proofs, export, keys.

Any signed-in user who acts in the territory may read it: the ledger is the territory's
public record of what was earned and spent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from core.errors import error_responses
from core.pagination import Cursor, Limit, page_size
from core.routing import Router, Territory
from services.ledger import keys as ledger_keys
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
    PublicKey,
    PublicKeys,
)
from services.ledger.merkle import leaf_hash

Seq = Annotated[int, QueryParameter(ge=1, le=2**62)]
TreeSize = Annotated[int, QueryParameter(ge=1, le=2**62, description="A checkpoint's tree size")]
Kind = Literal["mint", "transfer", "burn", "adjust"]  # canonical.KINDS
AccountParam = Annotated[
    str | None, QueryParameter(pattern=ACCOUNT.pattern, description="Entries debiting or crediting this account")
]
NDJSON = "application/x-ndjson"


class LedgerController(Controller):
    path = "/api/ledger"
    tags = ["ledger"]

    @get(responses=error_responses(401, 403, 404, 423, 429, 503), summary="Ledger entries, oldest first")
    async def entries(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        account: AccountParam = None,
        kind: Annotated[Kind | None, QueryParameter()] = None,
        ref_type: Annotated[str | None, QueryParameter(pattern=REF_TYPE.pattern)] = None,
        ref_id: Annotated[str | None, QueryParameter(min_length=1, max_length=128)] = None,
        from_seq: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        to_seq: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> EntryPage:
        async with router.read(territory) as conn:
            items, next_cursor = await service.list_entries(
                conn,
                limit=page_size(request, limit),
                cursor=cursor,
                account=account,
                kind=kind,
                ref_type=ref_type,
                ref_id=ref_id,
                from_seq=from_seq,
                to_seq=to_seq,
            )
        return EntryPage([LedgerEntry.of(e) for e in items], next_cursor)

    @get(
        "/checkpoints",
        responses=error_responses(401, 403, 404, 423, 429, 503),
        summary="Signed checkpoints (Merkle roots), newest first",
    )
    async def checkpoints(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> CheckpointPage:
        async with router.read(territory) as conn:
            items, next_cursor = await service.list_checkpoints(conn, limit=page_size(request, limit), cursor=cursor)
        return CheckpointPage([LedgerCheckpoint.of(c) for c in items], next_cursor)

    @get(
        "/entries/{seq:int}/proof",
        responses=error_responses(401, 403, 404, 409, 423, 429, 503),
        summary="Inclusion proof of an entry in a checkpoint (default: the latest)",
    )
    async def proof(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        seq: Annotated[int, PathParameter(ge=1, le=2**62)],
        tree_size: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
    ) -> InclusionProofOut:
        async with router.read(territory) as conn:
            p = await service.inclusion_proof(conn, territory.code, seq, tree_size)
        return InclusionProofOut(
            entry=LedgerEntry.of(p.entry),
            leaf_index=p.leaf_index,
            leaf_hash=leaf_hash(p.entry.entry_hash).hex(),
            tree_size=p.checkpoint.tree_size,
            audit_path=[h.hex() for h in p.path],
            checkpoint=LedgerCheckpoint.of(p.checkpoint),
        )

    @get(
        "/consistency",
        responses=error_responses(401, 403, 404, 409, 423, 429, 503),
        summary="Consistency proof between two checkpoints",
    )
    async def consistency(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        first: Annotated[int, QueryParameter(name="from", ge=1, le=2**62, description="The older checkpoint's size")],
        second: Annotated[int, QueryParameter(name="to", ge=1, le=2**62, description="The newer checkpoint's size")],
    ) -> ConsistencyProofOut:
        async with router.read(territory) as conn:
            old, new, path = await service.consistency_proof(conn, territory.code, first, second)
        return ConsistencyProofOut(LedgerCheckpoint.of(old), LedgerCheckpoint.of(new), [h.hex() for h in path])

    @get(
        "/export",
        responses=error_responses(401, 403, 404, 423, 429, 503),
        summary="Every entry, checkpoint and balance as JSON lines, from one snapshot",
        description="Verify it offline with `oneheart ledger verify CODE --from-export FILE`.",
        media_type=NDJSON,
    )
    async def export(
        self, request: Request[Any, Any, Any], router: NamedDependency[Router], territory: NamedDependency[Territory]
    ) -> Stream:
        settings = request.app.state.settings
        # Open the snapshot before answering, so an unavailable server is a 503, not a cut stream.
        cm = service.snapshot(router, territory)
        conn = await cm.__aenter__()
        lines = service.export_lines(conn, territory.code, settings)
        try:
            first = await anext(lines)
        except BaseException as exc:
            await cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                yield first
                async for chunk in lines:
                    yield chunk
            except BaseException as exc:
                await cm.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            else:
                await cm.__aexit__(None, None, None)

        return Stream(
            body(),
            media_type=NDJSON,
            headers={"Content-Disposition": f'attachment; filename="ledger-{territory.code}.jsonl"'},
        )

    @get(
        "/keys",
        responses=error_responses(401, 403, 404, 423, 429, 503),
        summary="Public keys that sign this territory's checkpoints",
    )
    async def keys(self, request: Request[Any, Any, Any], territory: NamedDependency[Territory]) -> PublicKeys:
        jwks = ledger_keys.public_jwks(ledger_keys.load_keys(request.app.state.settings, territory.code))
        return PublicKeys(territory.code, [PublicKey(**k) for k in jwks["keys"]])

    @get(
        "/balances/{account:str}",
        responses=error_responses(401, 403, 404, 423, 429, 503),
        summary="An account's balance (tokens and XP)",
    )
    async def balance(
        self,
        router: NamedDependency[Router],
        territory: NamedDependency[Territory],
        account: Annotated[str, PathParameter(pattern=ACCOUNT.pattern)],
    ) -> Balance:
        async with router.read(territory) as conn:
            tokens, xp = await service.get_balance(conn, account)
        return Balance(account, tokens, xp)
