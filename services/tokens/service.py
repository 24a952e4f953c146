"""Transfers between players, contributions to pools, pool balances (here and federation-wide)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import InvalidInput
from core.events.outbox import emit
from core.idempotency import answer_once
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
TRANSFER_PATH = "/api/tokens/transfer"  # the idempotency key's request, for the API and the web app alike


class Refused(InvalidInput):
    """A transfer the rules refuse (400); ``params`` are the numbers and names a page shows."""

    def __init__(self, detail: str, **params: Any) -> None:
        super().__init__(detail)
        self.params = params


class TransferTooLarge(Refused):
    code = "transfer_too_large"


class SelfTransfer(Refused):
    code = "self_transfer"


class UnknownPlayer(Refused):
    code = "unknown_player"


class AmbiguousPlayer(Refused):
    code = "ambiguous_player"


class NotEnoughTokens(ledger.InsufficientFunds):
    """409 ``insufficient_funds``, seen before the ledger is asked (a transfer's preview)."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"you have {have} tokens; this transfer needs {need}")
        self.params = {"have": have, "need": need}


@dataclass(frozen=True)
class Recipient:
    id: uuid.UUID
    display_name: str


def pool_account(pool: str) -> str:
    return f"pool:{pool}"


async def balance(conn: AsyncConnection, account: str) -> Balance:
    tokens, xp = await ledger.get_balance(conn, account)
    return Balance(account, tokens, xp)


async def find_recipient(conn: AsyncConnection, text: str) -> Recipient:
    """The player of this territory a person means by ``text``: a player id, or a display name
    (exact, else ignoring case) that only one player has. :class:`UnknownPlayer` /
    :class:`AmbiguousPlayer` otherwise."""
    wanted = " ".join(text.split())
    if not wanted:
        raise UnknownPlayer("name the player to send tokens to", name=wanted)
    try:
        by_id: uuid.UUID | None = uuid.UUID(wanted)
    except ValueError:
        by_id = None
    p = players.c
    if by_id is not None:
        row = (await conn.execute(sa.select(p.id, p.display_name).where(p.id == by_id))).first()
        if row is not None:
            return Recipient(row.id, row.display_name)
    for condition in (p.display_name == wanted, sa.func.lower(p.display_name) == wanted.lower()):
        found = (await conn.execute(sa.select(p.id, p.display_name).where(condition).limit(2))).all()
        if len(found) > 1:
            raise AmbiguousPlayer(
                f"more than one player is called {wanted!r}; use their player id instead", name=wanted
            )
        if found:
            return Recipient(found[0].id, found[0].display_name)
    raise UnknownPlayer(f"no player called {wanted!r} in territory {territory_of(conn)!r}", name=wanted)


async def display_names(conn: AsyncConnection, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of players of this territory (the ids that have none are left out)."""
    if not ids:
        return {}
    p = players.c
    return {r.id: r.display_name for r in await conn.execute(sa.select(p.id, p.display_name).where(p.id.in_(ids)))}


async def check_transfer(conn: AsyncConnection, sender: uuid.UUID, data: TransferIn, *, most: int) -> Recipient:
    """What a transfer's rules say before the ledger is asked (which alone decides whether the
    sender has the tokens): the amount's limit, not to oneself, to a player of the territory."""
    if data.amount > most:
        raise TransferTooLarge(f"a transfer moves at most {most} tokens", most=most)
    if data.to_player == sender:
        raise SelfTransfer("you cannot transfer tokens to yourself")
    p = players.c
    row = (await conn.execute(sa.select(p.id, p.display_name).where(p.id == data.to_player))).first()
    if row is None:
        raise UnknownPlayer(
            f"player {data.to_player} has no player in territory {territory_of(conn)!r}", name=str(data.to_player)
        )
    return Recipient(row.id, row.display_name)


async def preview_transfer(conn: AsyncConnection, sender: uuid.UUID, data: TransferIn, *, most: int) -> Balance:
    """What a confirmation step checks before it asks "Send 5 Heart tokens to Bob?": the rules
    and whether the sender has the tokens now (the transfer itself asks the ledger again).
    Returns the sender's balance."""
    await check_transfer(conn, sender, data, most=most)
    have = await balance(conn, ledger.player_account(sender))
    if data.amount > have.tokens:
        raise NotEnoughTokens(have.tokens, data.amount)
    return have


async def transfer(conn: AsyncConnection, sender: uuid.UUID, data: TransferIn, *, most: int) -> Transfer:
    """Move tokens from ``sender`` to another player of the territory (one ledger entry)."""
    territory = territory_of(conn)
    await check_transfer(conn, sender, data, most=most)
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


async def transfer_once(
    conn: AsyncConnection, identity: Identity, territory: str, data: TransferIn, key: str | None, *, most: int
) -> Response[Transfer]:
    """A player's transfer (``POST /api/tokens/transfer`` and the wallet's confirmation): once
    per idempotency key, the same key replaying the first answer."""
    require_role(identity, "player", territory)
    # The key is per territory; the sender is part of the request, so another player's reuse
    # of the same key is a different request (422), never someone else's answer.
    body = {"from": str(identity.user_id), **msgspec.to_builtins(data)}
    return await answer_once(
        conn, key, ("POST", TRANSFER_PATH, body), 201, lambda: transfer(conn, identity.user_id, data, most=most)
    )


def transfer_of(response: Response[Any]) -> Transfer:
    """The transfer an answer of :func:`transfer_once` carries (a replay carries it as JSON)."""
    content = response.content
    return content if isinstance(content, Transfer) else msgspec.convert(content, Transfer)


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
