"""Rewards: create, list, change, top up; redeem (stock, burn and record in one transaction)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.db import row_to
from core.errors import Conflict, InvalidInput, NotFound
from core.events.outbox import emit
from core.idempotency import answer_once
from core.pagination import decode_time_cursor, time_cursor
from core.routing import territory_of
from services.ledger import service as ledger
from services.ledger.models import balances as B
from services.rewards.dto import Redemption, Reward, RewardIn, RewardPatch
from services.rewards.models import redemptions, rewards

R, D = rewards, redemptions
_REWARD = [R.c.id, R.c.title, R.c.description, R.c.price, R.c.stock, R.c.active, R.c.created_at, R.c.updated_at]
_REDEMPTION = [D.c.id, D.c.reward_id, D.c.player_id, D.c.price, D.c.seq, D.c.status, D.c.created_at]


class OutOfStock(Conflict):
    code = "out_of_stock"


class RewardInactive(Conflict):
    code = "reward_inactive"


def _reward(row: Any) -> Reward:
    return row_to(Reward, row)


def voucher_code(redemption_id: uuid.UUID) -> str:
    """The code a player shows to claim a redemption: the first 12 hex digits of its id,
    upper case, in groups of four (``7F3A-92C1-0BDE``). It names the redemption row, so whoever
    hands the reward out can find it (``id::text LIKE '7f3a92c1-0bde%'``)."""
    digits = redemption_id.hex[:12].upper()
    return "-".join(digits[i : i + 4] for i in range(0, 12, 4))


def _redemption(row: Any) -> Redemption:
    return row_to(Redemption, row, code=voucher_code(row.id))


async def create_reward(conn: AsyncConnection, data: RewardIn, created_by: uuid.UUID) -> Reward:
    row = (
        await conn.execute(
            R.insert()
            .values(
                id=uuid.uuid4(),
                title=data.title.strip(),
                description=data.description,
                price=data.price,
                stock=data.stock,
                active=True,
                created_by=created_by,
            )
            .returning(*_REWARD)
        )
    ).one()
    return _reward(row)


async def get_reward(conn: AsyncConnection, reward_id: uuid.UUID) -> Reward:
    row = (await conn.execute(sa.select(*_REWARD).where(R.c.id == reward_id))).first()
    if row is None:
        raise NotFound(f"no reward {reward_id}")
    return _reward(row)


async def list_rewards(
    conn: AsyncConnection, *, active_only: bool, limit: int, cursor: str | None
) -> tuple[list[Reward], str | None]:
    """Oldest first (a stable order for paging)."""
    query = sa.select(*_REWARD).order_by(R.c.created_at, R.c.id).limit(limit + 1)
    if active_only:
        query = query.where(R.c.active)
    if cursor:
        query = query.where(sa.tuple_(R.c.created_at, R.c.id) > decode_time_cursor(cursor))
    items = [_reward(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return items, (time_cursor(items[-1].created_at, items[-1].id) if more else None)


async def update_reward(conn: AsyncConnection, reward_id: uuid.UUID, patch: RewardPatch) -> Reward:
    """Change a reward; ``add_stock`` adds to what is left (an increment: never races a redemption)."""
    values: dict[str, Any] = {
        name: value
        for name, value in (
            ("title", patch.title.strip() if patch.title is not None else None),
            ("description", patch.description),
            ("price", patch.price),
            ("active", patch.active),
        )
        if value is not None
    }
    if patch.add_stock is not None:
        values["stock"] = R.c.stock + patch.add_stock
    if not values:
        return await get_reward(conn, reward_id)
    try:
        row = (
            await conn.execute(
                R.update().where(R.c.id == reward_id).values(**values, updated_at=sa.func.now()).returning(*_REWARD)
            )
        ).first()
    except sa.exc.DBAPIError as exc:  # stock + add_stock past the integer range
        if "out of range" in str(exc.orig):
            raise InvalidInput("stock would exceed the largest number it can hold") from None
        raise
    if row is None:
        raise NotFound(f"no reward {reward_id}")
    return _reward(row)


# One unit of stock, if there is one: the UPDATE row-locks the reward, so concurrent redemptions
# queue here, and each re-checks ``stock > 0`` against the committed value once it gets the row.
_TAKE = (
    R.update()
    .where(R.c.id == sa.bindparam("reward_id"), R.c.active, R.c.stock > 0)
    .values(stock=R.c.stock - 1)
    .returning(R.c.price)
)


def _refusal(active: bool, stock: int) -> Conflict | None:
    if not active:
        return RewardInactive("this reward is no longer offered")
    if stock <= 0:
        return OutOfStock("this reward is out of stock")
    return None


async def redeem(conn: AsyncConnection, reward_id: uuid.UUID, player_id: uuid.UUID) -> Redemption:
    """Take one unit, burn its price from the player, record it; all in ``conn``'s transaction.

    409 ``out_of_stock`` / ``reward_inactive`` / ``insufficient_funds`` before the ledger is
    touched; should the burn itself find too few tokens (a concurrent spend), its 409 rolls the
    caller's transaction back, the unit of stock included."""
    account = ledger.player_account(player_id)
    # Unlocked look first: a reward already sold out, or a player who cannot pay, is answered
    # at once instead of queueing on the reward's row lock behind the other buyers.
    tokens = sa.select(B.c.tokens).where(B.c.account == account).scalar_subquery().label("tokens")
    seen = (await conn.execute(sa.select(R.c.price, R.c.active, R.c.stock, tokens).where(R.c.id == reward_id))).first()
    if seen is None:
        raise NotFound(f"no reward {reward_id}")
    refused = _refusal(seen.active, seen.stock)
    if refused:
        raise refused
    if (seen.tokens or 0) < seen.price:
        raise ledger.InsufficientFunds(f"this reward costs {seen.price} tokens; you have {seen.tokens or 0}")
    price = (await conn.execute(_TAKE, {"reward_id": reward_id})).scalar()
    if price is None:  # sold out (or withdrawn) while we waited for the row
        active = (await conn.execute(sa.select(R.c.active).where(R.c.id == reward_id))).scalar()
        raise _refusal(bool(active), 0) or OutOfStock("this reward is out of stock")
    redemption_id = uuid.uuid4()
    entry = await ledger.append(
        conn,
        territory_of(conn),
        kind="burn",
        debit=account,
        credit="burn",
        amount=price,
        ref_type="redemption",
        ref_id=str(redemption_id),
        memo=f"reward {reward_id}",
    )
    row = (
        await conn.execute(
            D.insert()
            .values(
                id=redemption_id,
                reward_id=reward_id,
                player_id=player_id,
                price=price,
                seq=entry.seq,
                status="redeemed",
                created_at=entry.created_at,
            )
            .returning(*_REDEMPTION)
        )
    ).one()
    await emit(
        conn,
        "reward.redeemed",
        {
            "redemption_id": str(redemption_id),
            "reward_id": str(reward_id),
            "player_id": str(player_id),
            "price": price,
            "seq": entry.seq,
        },
    )
    return _redemption(row)


class CannotAfford(ledger.InsufficientFunds):
    """409 ``insufficient_funds`` seen before anything is taken (a redemption's preview)."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"this reward costs {need} tokens; you have {have}")
        self.params = {"have": have, "need": need}


async def preview_redeem(conn: AsyncConnection, reward_id: uuid.UUID, player_id: uuid.UUID) -> tuple[Reward, int]:
    """What a confirmation step checks before it asks "Redeem X for 25 Heart tokens?": the
    reward is offered, in stock, and the player has the price now (the redemption checks it
    all again). Returns the reward and the player's tokens."""
    reward = await get_reward(conn, reward_id)
    refused = _refusal(reward.active, reward.stock)
    if refused:
        raise refused
    tokens, _ = await ledger.get_balance(conn, ledger.player_account(player_id))
    if tokens < reward.price:
        raise CannotAfford(tokens, reward.price)
    return reward, tokens


def redeem_path(reward_id: uuid.UUID) -> str:
    return f"/api/rewards/{reward_id}/redeem"


async def redeem_once(
    conn: AsyncConnection, identity: Identity, territory: str, reward_id: uuid.UUID, key: str | None
) -> Response[Redemption]:
    """A player redeems a reward (``POST /api/rewards/{id}/redeem`` and the web app's
    confirmation): with a key, once per key, a retry replaying the first answer."""
    require_role(identity, "player", territory)
    request_key = ("POST", redeem_path(reward_id), {"player": str(identity.user_id)})
    return await answer_once(conn, key, request_key, 201, lambda: redeem(conn, reward_id, identity.user_id))


def redemption_of(response: Response[Any]) -> Redemption:
    """The redemption an answer of :func:`redeem_once` carries (a replay carries it as JSON)."""
    content = response.content
    if isinstance(content, Redemption):
        return content
    if "code" not in content:  # stored before redemptions carried their code
        content = {**content, "code": voucher_code(uuid.UUID(content["id"]))}
    return msgspec.convert(content, Redemption)


async def titles(conn: AsyncConnection, reward_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Titles of rewards by id (withdrawn ones too)."""
    if not reward_ids:
        return {}
    return {r.id: r.title for r in await conn.execute(sa.select(R.c.id, R.c.title).where(R.c.id.in_(reward_ids)))}


async def redeemed_titles(conn: AsyncConnection, redemption_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """What each redemption bought (the reward's title), by redemption id."""
    if not redemption_ids:
        return {}
    query = sa.select(D.c.id, R.c.title).join(R, R.c.id == D.c.reward_id).where(D.c.id.in_(redemption_ids))
    return {r.id: r.title for r in await conn.execute(query)}


async def list_redemptions(
    conn: AsyncConnection, player_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Redemption], str | None]:
    """A player's redemptions, newest first."""
    query = (
        sa.select(*_REDEMPTION)
        .where(D.c.player_id == player_id)
        .order_by(D.c.created_at.desc(), D.c.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(sa.tuple_(D.c.created_at, D.c.id) < decode_time_cursor(cursor))
    items = [_redemption(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return items, (time_cursor(items[-1].created_at, items[-1].id) if more else None)
