"""Transfers between players, contributions to pools, pool balances (here and federation-wide)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.codes import quoted_schema, schema_for
from core.errors import InvalidInput
from core.events.outbox import emit
from core.pagination import decode_time_cursor, time_cursor
from core.routing import Router, is_server_down
from services.ledger import service as ledger
from services.players.models import players
from services.tokens.dto import (
    Balance,
    Contribution,
    ContributionIn,
    GlobalPool,
    Pool,
    PoolBalance,
    Pools,
    Share,
    Transfer,
    TransferIn,
)
from services.tokens.models import contributions
from territories import models

POOLS: tuple[Pool, ...] = ("territory", "global")
_CHUNK = 250


def pool_account(pool: str) -> str:
    return f"pool:{pool}"


async def balance(conn: AsyncConnection, account: str) -> Balance:
    tokens, xp = await ledger.get_balance(conn, account)
    return Balance(account, tokens, xp)


async def transfer(
    conn: AsyncConnection, territory: str, sender: uuid.UUID, data: TransferIn, *, most: int
) -> Transfer:
    """Move tokens from ``sender`` to another player of the territory (one ledger entry)."""
    if data.amount > most:
        raise InvalidInput(f"a transfer moves at most {most} tokens")
    if data.to_player == sender:
        raise InvalidInput("you cannot transfer tokens to yourself")
    known = (await conn.execute(sa.select(players.c.id).where(players.c.id == data.to_player))).first()
    if known is None:
        raise InvalidInput(f"player {data.to_player} has no player in territory {territory!r}")
    entry = await ledger.append(
        conn,
        territory,
        kind="transfer",
        debit=ledger.player_account(sender),
        credit=ledger.player_account(data.to_player),
        amount=data.amount,
        memo=data.memo,
    )
    left, _ = await ledger.get_balance(conn, ledger.player_account(sender))
    await emit(
        conn,
        "tokens.transferred",
        {"from_player": str(sender), "to_player": str(data.to_player), "amount": data.amount, "seq": entry.seq},
    )
    return Transfer(entry.seq, sender, data.to_player, data.amount, data.memo, entry.created_at, left)


def _contribution(row: Any) -> Contribution:
    return Contribution(
        row.id, row.sponsor_id, row.pool, pool_account(row.pool), row.amount, row.seq, row.memo, row.created_at
    )


async def contribute(
    conn: AsyncConnection, territory: str, sponsor: uuid.UUID, pool: Pool, data: ContributionIn, *, most: int
) -> Contribution:
    """Tokens enter the economy from a sponsor: a mint into the pool that names the sponsor."""
    if data.amount > most:
        raise InvalidInput(f"a contribution adds at most {most} tokens")
    contribution_id = uuid.uuid4()
    sponsor_account = ledger.sponsor_account(sponsor)
    entry = await ledger.append(
        conn,
        territory,
        kind="mint",
        debit="mint",
        credit=pool_account(pool),
        amount=data.amount,
        ref_type="contribution",
        ref_id=str(contribution_id),
        memo=f"{sponsor_account} {data.memo}" if data.memo else sponsor_account,
    )
    row = (
        await conn.execute(
            contributions.insert()
            .values(
                id=contribution_id,
                sponsor_id=sponsor,
                pool=pool,
                amount=data.amount,
                seq=entry.seq,
                memo=data.memo,
                created_at=entry.created_at,
            )
            .returning(contributions)
        )
    ).one()
    await emit(
        conn,
        "pool.contributed",
        {
            "contribution_id": str(contribution_id),
            "sponsor_id": str(sponsor),
            "pool": pool,
            "amount": data.amount,
            "seq": entry.seq,
        },
    )
    return _contribution(row)


async def list_contributions(
    conn: AsyncConnection, pool: Pool, *, limit: int, cursor: str | None
) -> tuple[list[Contribution], str | None]:
    """A pool's contributions, newest first."""
    c = contributions
    query = sa.select(c).where(c.c.pool == pool).order_by(c.c.created_at.desc(), c.c.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(sa.tuple_(c.c.created_at, c.c.id) < decode_time_cursor(cursor))
    items = [_contribution(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return items, (time_cursor(items[-1].created_at, items[-1].id) if more else None)


async def pools(conn: AsyncConnection, territory: str) -> Pools:
    items = []
    for pool in POOLS:
        tokens, _ = await ledger.get_balance(conn, pool_account(pool))
        items.append(PoolBalance(pool, pool_account(pool), tokens))
    return Pools(territory, items)


async def _shares_on(router: Router, alias: str, codes: list[str], account: str) -> dict[str, int] | None:
    """Each territory's balance of ``account`` on one server (one query per 250 territories);
    None when the server is down."""
    out: dict[str, int] = {}
    try:
        engine = await router.engine(alias)
        async with engine.connect() as conn:
            # Only schemas that already have a ledger (a territory still provisioning has none).
            present = {
                r[0]
                for r in await conn.execute(
                    sa.text(
                        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relname = 'balances' AND n.nspname = ANY(:schemas)"
                    ),
                    {"schemas": [schema_for(c) for c in codes]},
                )
            }
            ready = [c for c in codes if schema_for(c) in present]
            for i in range(0, len(ready), _CHUNK):
                union = " UNION ALL ".join(
                    f"SELECT '{c}', (SELECT tokens FROM {quoted_schema(c)}.balances WHERE account = :account)"
                    for c in ready[i : i + _CHUNK]
                )
                for code, tokens in await conn.execute(sa.text(union), {"account": account}):
                    out[code] = int(tokens or 0)
    except Exception as exc:
        if is_server_down(exc):
            return None
        raise
    return out


async def global_pool(router: Router) -> GlobalPool:
    """The federated global pool: the sum of every territory's ``pool:global`` share."""
    account = pool_account("global")
    by_server: dict[str, list[str]] = defaultdict(list)
    async with router.registry.connect() as conn:
        t = models.territories
        for code, alias in await conn.execute(sa.select(t.c.code, t.c.server_alias).order_by(t.c.code)):
            by_server[alias].append(code)
    aliases = list(by_server)
    results = await asyncio.gather(*(_shares_on(router, a, by_server[a], account) for a in aliases))
    shares: dict[str, int] = {}
    unavailable: list[str] = []
    for alias, found in zip(aliases, results, strict=True):
        if found is None:
            unavailable.extend(by_server[alias])
        else:
            shares.update(found)
    listed = [Share(code, tokens) for code, tokens in sorted(shares.items()) if tokens]
    return GlobalPool(account, sum(shares.values()), listed, len(shares), sorted(unavailable))
