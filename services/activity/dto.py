from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class ActivityItem(msgspec.Struct):
    id: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class ActivityPage(msgspec.Struct):
    items: list[ActivityItem]
    next_cursor: str | None
