"""Distances on the Earth: one radius and one haversine for every check and query."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# Coordinates are kept to 7 decimals (about 1 cm): finer digits are noise, and a subnormal
# value such as 5e-324 would make SQL trigonometry underflow.
COORDINATE_DECIMALS = 7


def check_point(lat: float, lng: float) -> tuple[float, float]:
    """A WGS84 point as stored: finite, within bounds, rounded to 7 decimals; 400 otherwise."""
    from core.errors import InvalidInput

    if not (math.isfinite(lat) and math.isfinite(lng)) or not -90 <= lat <= 90 or not -180 <= lng <= 180:
        raise InvalidInput("lat must be within [-90, 90] and lng within [-180, 180]")
    return round(lat, COORDINATE_DECIMALS) + 0.0, round(lng, COORDINATE_DECIMALS) + 0.0
