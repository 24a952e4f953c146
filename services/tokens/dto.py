from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from core.text import NO_NUL

Pool = Literal["territory", "global"]
Tokens = Annotated[int, msgspec.Meta(ge=1, le=10**15, description="Whole tokens (the smallest unit)")]
Memo = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]


class Balance(msgspec.Struct):
    account: str
    tokens: int
    xp: int


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    to_player: uuid.UUID
    amount: Tokens
    memo: Memo | None = None


class Transfer(msgspec.Struct):
    seq: int
    from_player: uuid.UUID
    to_player: uuid.UUID
    amount: int
    memo: str | None
    created_at: datetime
    balance: int  # the sender's tokens after the transfer


class ContributionIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Tokens
    memo: Memo | None = None


class Contribution(msgspec.Struct):
    id: uuid.UUID
    sponsor_id: uuid.UUID
    pool: str
    account: str
    amount: int
    seq: int
    memo: str | None
    created_at: datetime


class ContributionPage(msgspec.Struct):
    items: list[Contribution]
    next_cursor: str | None


class PoolBalance(msgspec.Struct):
    pool: str
    account: str
    tokens: int


class Pools(msgspec.Struct):
    territory: str
    items: list[PoolBalance]


class Share(msgspec.Struct):
    territory: str
    tokens: int


class GlobalPool(msgspec.Struct):
    account: str
    tokens: int  # the sum of the shares that could be read
    shares: list[Share]  # territories with a non-zero share
    territories: int  # territories counted
    unavailable: list[str]  # territories whose server did not answer (not in the sum)
