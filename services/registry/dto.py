from __future__ import annotations

from typing import Annotated, Any

import msgspec

from core.text import VISIBLE

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]
Alias = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,30}$", description="Database server alias")]


class TerritoryIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=VISIBLE)]
    server: Alias
    residency_region: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    matrix_homeserver: Annotated[str, msgspec.Meta(min_length=3, max_length=255)] | None = None


class TerritoryOut(msgspec.Struct):
    code: str
    name: str
    status: str
    server: str
    schema: str
    residency_region: str
    matrix_homeserver: str | None
    settings: dict[str, Any]


class TerritoryPage(msgspec.Struct):
    items: list[TerritoryOut]
    next_cursor: str | None


class ServerOut(msgspec.Struct):
    alias: str
    dsn: str
    region: str
    status: str
