"""Keyset pagination: opaque cursors and the shared ``limit`` bounds."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Request
from litestar.params import QueryParameter

from core.errors import InvalidInput

# The query parameters of every paginated list, and the page size they give.
Limit = Annotated[int | None, QueryParameter(ge=1, le=200)]
Cursor = Annotated[str | None, QueryParameter(max_length=512)]


def page_size(request: Request[Any, Any, Any], limit: int | None) -> int:
    """``limit``, or the default page size, never above ``OH_PAGE_SIZE_MAX``."""
    settings = request.app.state.settings
    return int(min(limit or settings.http.page_size_default, settings.http.page_size_max))


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


def decode_int_cursor(cursor: str) -> int:
    """The integer key (an id, a sequence number) of a cursor made by ``encode_cursor(str(n))``;
    400 when it is not a non-negative 64-bit integer."""
    (raw,) = decode_cursor(cursor)
    if not raw.isdigit() or int(raw) > 2**63 - 1:
        raise InvalidInput("malformed cursor")
    return int(raw)
