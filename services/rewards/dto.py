from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from core.text import NO_NUL, VISIBLE

# No NUL: Postgres text cannot hold it.
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=VISIBLE)]
Description = Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)]
Price = Annotated[int, msgspec.Meta(ge=1, le=10**12, description="Tokens burnt per redemption")]
Stock = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000, description="Units left")]


class RewardIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    price: Price
    stock: Stock
    description: Description = ""


class RewardPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change; absent (or null) ones stay as they are."""

    title: Title | None = None
    description: Description | None = None
    price: Price | None = None
    active: bool | None = None
    add_stock: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000, description="Units to add")] | None = None


class Reward(msgspec.Struct):
    id: uuid.UUID
    title: str
    description: str
    price: int
    stock: int
    active: bool
    created_at: datetime
    updated_at: datetime


class RewardPage(msgspec.Struct):
    items: list[Reward]
    next_cursor: str | None


class Redemption(msgspec.Struct):
    id: uuid.UUID
    reward_id: uuid.UUID
    player_id: uuid.UUID
    price: int
    seq: int  # the ledger entry that burnt the price
    status: str
    created_at: datetime
    code: Annotated[str, msgspec.Meta(description="The voucher the player shows: XXXX-XXXX-XXXX, from the id")]


class RedemptionPage(msgspec.Struct):
    items: list[Redemption]
    next_cursor: str | None
