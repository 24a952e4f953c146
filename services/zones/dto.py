from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from core.text import VISIBLE

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=VISIBLE)]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS84 latitude of the centre")]
Lng = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS84 longitude of the centre")]
Radius = Annotated[float, msgspec.Meta(gt=0, le=100_000, description="Radius in metres (max 100 km)")]


class ZoneIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    lat: Lat
    lng: Lng
    radius_m: Radius


class Zone(msgspec.Struct):
    id: uuid.UUID
    name: str
    lat: float
    lng: float
    radius_m: float
    created_at: datetime


class ZonePage(msgspec.Struct):
    items: list[Zone]
    next_cursor: str | None
