from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from core.geo import coordinate
from core.text import VISIBLE

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=VISIBLE)]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS84 latitude of the centre (kept to 7 decimals)")]
Lng = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS84 longitude of the centre (kept to 7 decimals)")]
Radius = Annotated[
    float, msgspec.Meta(ge=1, le=100_000, description="Radius in metres, 1 m to 100 km (kept to the centimetre)")
]


class ZoneIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    lat: Lat
    lng: Lng
    radius_m: Radius

    def __post_init__(self) -> None:
        # A sensible precision, so no stored value is a float SQL arithmetic trips on (5e-324).
        self.lat = coordinate(self.lat)
        self.lng = coordinate(self.lng)
        self.radius_m = round(self.radius_m, 2)


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
