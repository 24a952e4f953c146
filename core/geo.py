"""Distances on the Earth: one radius and one haversine (in Python and in SQL) for every check
and query, and the precision coordinates are kept at.

Coordinates are kept to :data:`COORDINATE_DECIMALS` decimals (about 1 cm): anything finer is noise from
a GPS or a float, and subnormal values such as ``5e-324`` would make PostgreSQL's float
arithmetic raise ("value out of range: underflow"). :func:`coordinate` normalises a value at
the edge; :func:`distance_sql` also normalises what it reads, so no stored finite value can
make a distance query fail.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
# Coordinates are kept to 7 decimals (about 1 cm): finer digits are noise, and a subnormal
# value such as 5e-324 would make SQL trigonometry underflow.
COORDINATE_DECIMALS = 7
_SMALLEST = 10.0**-COORDINATE_DECIMALS


def coordinate(value: float) -> float:
    """``value`` (degrees) at the kept precision; ``ValueError`` if it is not finite.
    ``-0.0`` becomes ``0.0``."""
    if not math.isfinite(value):
        raise ValueError("a coordinate must be a finite number")
    return round(value, COORDINATE_DECIMALS) + 0.0


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _degrees(column: Any, bound: float) -> sa.ColumnElement[float]:
    """A stored coordinate as the distance SQL may use it: magnitudes below the kept precision
    read as 0 and values outside ``[-bound, bound]`` (or NaN/infinite) as NULL. PostgreSQL
    raises on a float multiplication whose exact result is not 0 but rounds to 0 (underflow);
    with every angle either 0 or at least 1e-7 degrees no step of the haversine below can."""
    return sa.case(
        (sa.func.abs(column) < _SMALLEST, sa.literal(0.0, sa.Float)),
        (sa.func.abs(column) <= bound, column),
        else_=sa.null(),
    )


def distance_sql(lat_column: Any, lng_column: Any, lat: float, lng: float) -> sa.ColumnElement[float]:
    """Great-circle (haversine) distance in metres from a point to each row's ``lat_column``,
    ``lng_column``, in SQL. It never raises for a stored finite value: a row whose coordinates
    are out of range gets NULL (so it is never "near"). ``lat``/``lng`` are normalised with
    :func:`coordinate`."""
    rlat, rlng = math.radians(coordinate(lat)), math.radians(coordinate(lng))
    zlat, zlng = sa.func.radians(_degrees(lat_column, 90.0)), sa.func.radians(_degrees(lng_column, 180.0))
    a = sa.func.power(sa.func.sin((zlat - rlat) / 2), 2) + math.cos(rlat) * sa.func.cos(zlat) * sa.func.power(
        sa.func.sin((zlng - rlng) / 2), 2
    )
    # Not least(1.0, a): least() skips NULLs, so an out-of-range centre would read as antipodal.
    return 2 * EARTH_RADIUS_M * sa.func.asin(sa.func.sqrt(sa.case((a > 1.0, sa.literal(1.0, sa.Float)), else_=a)))


def check_point(lat: float, lng: float) -> tuple[float, float]:
    """A WGS84 point as stored: finite, within bounds, rounded to 7 decimals; 400 otherwise."""
    from core.errors import InvalidInput

    if not (math.isfinite(lat) and math.isfinite(lng)) or not -90 <= lat <= 90 or not -180 <= lng <= 180:
        raise InvalidInput("lat must be within [-90, 90] and lng within [-180, 180]")
    return coordinate(lat), coordinate(lng)
