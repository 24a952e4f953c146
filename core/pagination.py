"""Keyset pagination: opaque cursors and the shared ``limit`` bounds."""

from __future__ import annotations

import base64

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
