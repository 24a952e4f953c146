from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Notification(msgspec.Struct):
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(msgspec.Struct):
    items: list[Notification]
    next_cursor: str | None
    unread: int  # the player's unread notifications in this territory, all pages


class Marked(msgspec.Struct):
    marked: int  # how many were unread
