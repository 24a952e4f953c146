from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class Me(msgspec.Struct):
    id: uuid.UUID
    territory: str
    home_territory: str
    display_name: str
    level: int
    xp: int
    roles: dict[str, list[str]]
    joined_at: datetime
