"""Transfers between players, contributions to pools, pool balances (here and federation-wide)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import InvalidInput
from core.events.outbox import emit
from core.pagination import decode_time_cursor, time_cursor
from core.routing import Router, territory_of
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

POOLS: tuple[Pool, ...] = ("territory", "global")


def pool_account(pool: str) -> str:
    return f"pool:{pool}"


async def balance(conn: AsyncConnection, account: str) -> Balance:
    tokens, xp = await ledger.get_balance(conn, account)
    return Balance(account, tokens, xp)


async def transfer(conn: AsyncConnection, sender: uuid.UUID, data: TransferIn, *, most: int) -> Transfer:
    """Move tokens from ``sender`` to another player of the territory (one ledger entry)."""
    territory = territory_of(conn)
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
    m = row._mapping
    return Contribution(
        id=m["id"],
        sponsor_id=m["sponsor_id"],
        pool=m["pool"],
        account=pool_account(m["pool"]),
        amount=m["amount"],
        seq=m["seq"],
        memo=m["memo"],
        created_at=m["created_at"],
    )


async def contribute(
    conn: AsyncConnection, sponsor: uuid.UUID, pool: Pool, data: ContributionIn, *, most: int
) -> Contribution:
    """Tokens enter the economy from a sponsor: a mint into the pool that names the sponsor."""
    if data.amount > most:
        raise InvalidInput(f"a contribution adds at most {most} tokens")
    contribution_id = uuid.uuid4()
    sponsor_account = ledger.sponsor_account(sponsor)
    entry = await ledger.append(
        conn,
        territory_of(conn),
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


async def pools(conn: AsyncConnection) -> Pools:
    items = []
    for pool in POOLS:
        tokens, _ = await ledger.get_balance(conn, pool_account(pool))
        items.append(PoolBalance(pool, pool_account(pool), tokens))
    return Pools(territory_of(conn), items)


class GlobalPools:
    """The federated global pool, read across every territory of the registry."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def global_pool(self) -> GlobalPool:
        """The sum of every territory's ``pool:global`` share (a few statements per server);
        territories whose server is down are listed as unavailable, not summed."""
        account = pool_account("global")
        found = await self.router.across(
            "balances", "(SELECT tokens FROM {table} WHERE account = :account)", params={"account": account}
        )
        shares = {code: int(tokens or 0) for code, tokens in found.values.items()}
        listed = [Share(code, tokens) for code, tokens in sorted(shares.items()) if tokens]
        return GlobalPool(account, sum(shares.values()), listed, len(shares), found.unavailable)
