"""Keyset pagination: opaque cursors and the shared ``limit`` bounds."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from core.errors import InvalidInput


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int = 1) -> list[str]:
    try:
        values = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("malformed cursor") from None
    if len(values) != parts:
        raise InvalidInput("malformed cursor")
    return values


def time_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """The cursor after a row ordered by ``(time, id)``."""
    return encode_cursor(at.isoformat(), str(row_id))


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(time, id)`` of a cursor made by :func:`time_cursor`; 400 when it is not one."""
    at, row_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except ValueError:
        raise InvalidInput("malformed cursor") from None
