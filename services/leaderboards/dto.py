from __future__ import annotations

import uuid

import msgspec


class Rank(msgspec.Struct):
    rank: int  # from 1
    player_id: uuid.UUID
    display_name: str
    xp: int


class Leaderboard(msgspec.Struct):
    territory: str
    period: str  # all | day | week
    key: str  # the period's name: all, day:YYYY-MM-DD, week:YYYY-Www
    zone_id: uuid.UUID | None
    items: list[Rank]
    me: Rank | None  # the caller, when on this board (and not hidden)
    hidden: bool = False  # the caller chose not to appear on leaderboards
