"""Raw signals of one proof, the flags they raise and the feature vector the review model
reads. Pure functions: the worker gathers the inputs (media, zone, previous proof, clock)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from core.geo import haversine_m

# Thresholds of the flags (and of the 0/1 features that mirror them).
NSFW_MIN = 0.5  # open_nsfw probability; it over-triggers on skin: review, never reject
DUPLICATE_MAX_DISTANCE = 12  # pHash bits: a resized copy is 0-2, an 8% crop ~11, another photo 25-32
DUPLICATE_SCALE = 20  # closeness = 1 - distance / 20, floored at 0: unrelated photos give 0
TRAVEL_FREE_KMH = 100  # driving speed: anything below adds nothing
IMPOSSIBLE_KMH = 1000  # faster than an airliner door to door
TRAVEL_MIN_KM = 1.0  # below this, GPS jitter between two close fixes is not travel
CLOCK_SKEW_MAX_S = 3600
NAIVE_EXIF_SLACK = timedelta(hours=14)  # EXIF times without an offset are local: any zone is UTC-12..+14
MIN_SIDE = 400  # pixels on the short side
BLUR_MAX = 100.0  # Laplacian variance on the 256-px grey copy
POOR_ACCURACY_M = 100.0


# --- geometry and time ---------------------------------------------------------------------
def geofence(
    lat: float, lng: float, zone_lat: float, zone_lng: float, radius_m: float, accuracy_m: float | None = None
) -> float:
    """Metres outside the zone's circle (0 when inside). The fix's accuracy radius is given to
    the player: a point 30 m out with 50 m accuracy may well have been inside."""
    outside = haversine_m(lat, lng, zone_lat, zone_lng) - radius_m - max(accuracy_m or 0.0, 0.0)
    return max(0.0, outside)


def travel_speed_kmh(
    prev_point: tuple[float, float], prev_time: datetime, point: tuple[float, float], time: datetime
) -> float:
    """Speed needed to get from the previous proof's place to this one (km/h); inf for a jump
    with no time between the two."""
    km = haversine_m(*prev_point, *point) / 1000
    hours = abs((time - prev_time).total_seconds()) / 3600
    if hours == 0:
        return 0.0 if km == 0 else math.inf
    return km / hours


def clock_skew(captured_at: datetime, received_at: datetime, exif_taken_at: datetime | None = None) -> float:
    """Seconds of clock disagreement (>= 0): the device's capture time later than the server's
    receipt, or the photo's EXIF time far from the capture time. A late upload is not skew.
    An EXIF time without offset is local time, so only the part beyond 14 h counts."""
    skew = max(0.0, (captured_at - received_at).total_seconds())
    if exif_taken_at is not None:
        if exif_taken_at.tzinfo is None or captured_at.tzinfo is None:
            naive = captured_at.replace(tzinfo=None) if captured_at.tzinfo is None else _utc_naive(captured_at)
            apart = abs(exif_taken_at.replace(tzinfo=None) - naive) - NAIVE_EXIF_SLACK
        else:
            apart = abs(exif_taken_at - captured_at)
        skew = max(skew, apart.total_seconds())
    return skew


def _utc_naive(moment: datetime) -> datetime:
    offset = moment.utcoffset() or timedelta(0)
    return moment.replace(tzinfo=None) - offset


# --- duplicates -----------------------------------------------------------------------------
def phash_distance(a_hex: str, b_hex: str) -> int:
    """Hamming distance between two 64-bit perceptual hashes (hex)."""
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def nearest_duplicate(phash: str, earlier: Iterable[tuple[str, str]]) -> tuple[str, int] | None:
    """(proof_id, distance) of the closest earlier proof, None when there is none."""
    value, best = int(phash, 16), None
    for proof_id, other in earlier:
        distance = (value ^ int(other, 16)).bit_count()
        if best is None or distance < best[1]:
            best = (proof_id, distance)
            if distance == 0:
                break
    return best


# --- quality --------------------------------------------------------------------------------
def low_resolution(width: int | None, height: int | None, min_side: int = MIN_SIDE) -> bool:
    return width is not None and height is not None and min(width, height) < min_side


def blurry(sharpness: float | None, threshold: float = BLUR_MAX) -> bool:
    return sharpness is not None and sharpness < threshold


# --- signals, features, flags ---------------------------------------------------------------
class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """Every raw signal of one proof; None where it could not be measured."""

    kind: str = "image"  # "image" | "video"
    nsfw: float | None = None
    has_location: bool = True  # a GPS fix came with the proof (True too when the quest has no place)
    outside_zone_m: float | None = None  # geofence() result
    gps_accuracy_m: float | None = None
    duplicate_of: str | None = None
    duplicate_distance: int | None = None  # pHash bits to the nearest earlier proof
    travel_km: float | None = None
    travel_speed_kmh: float | None = None
    clock_skew_s: float | None = None
    width: int | None = None
    height: int | None = None
    sharpness: float | None = None
    has_exif: bool = True
    type_mismatch: bool = False


# The review model's input, in this order. Changing it means retraining (train.py).
FEATURES = (
    "nsfw",  # open_nsfw probability, 0 when not measured (video)
    "km_outside_log",  # log1p(km outside the zone, accuracy given)
    "no_location",  # 1 when the proof has no GPS fix
    "duplicate_closeness",  # max(0, 1 - pHash distance / 20) to the nearest earlier proof
    "travel_excess",  # log1p(max(0, km/h - 100) / 100) from the player's previous proof
    "clock_skew_log",  # log1p(hours of clock skew)
    "low_resolution",  # 1 when the short side < 400 px
    "blurry",  # 1 when the Laplacian variance < 100
    "no_exif",  # 1 for a photo with no camera EXIF (not counted for video)
    "poor_accuracy",  # 1 when the GPS fix's accuracy is known and worse than 100 m
)


def features(s: Signals) -> list[float]:
    """The fixed feature vector (see FEATURES) for the review model."""
    closeness = 0.0
    if s.duplicate_distance is not None:
        closeness = max(0.0, 1.0 - s.duplicate_distance / DUPLICATE_SCALE)
    speed = s.travel_speed_kmh or 0.0
    travel = (
        math.log1p(min(max(0.0, speed - TRAVEL_FREE_KMH) / 100, 1e4)) if (s.travel_km or 0) >= TRAVEL_MIN_KM else 0.0
    )
    poor = s.has_location and s.gps_accuracy_m is not None and s.gps_accuracy_m > POOR_ACCURACY_M
    return [
        float(s.nsfw or 0.0),
        math.log1p((s.outside_zone_m or 0.0) / 1000),
        float(not s.has_location),
        closeness,
        travel,
        math.log1p(abs(s.clock_skew_s or 0.0) / 3600),
        float(low_resolution(s.width, s.height)),
        float(blurry(s.sharpness)),
        float(s.kind == "image" and not s.has_exif),
        float(poor),
    ]


# Flags that only route a proof to people: they forbid auto approval and never reject alone.
REVIEW_ONLY = frozenset({"nsfw", "no_location", "type_mismatch", "unchecked_video"})
# Flags that lower the score but neither forbid auto approval nor reject alone.
QUALITY = frozenset({"low_resolution", "blurry", "no_exif", "poor_gps_accuracy"})
# Evidence against the proof: forbid auto approval; with a low score, reject.
HARD = frozenset({"outside_zone", "duplicate", "impossible_travel", "clock_skew"})


def flags(s: Signals) -> list[str]:
    """Stable flag names raised by the signals, in a fixed order."""
    raised = {
        "nsfw": s.nsfw is not None and s.nsfw >= NSFW_MIN,
        "outside_zone": (s.outside_zone_m or 0.0) > 0,
        "no_location": not s.has_location,
        "duplicate": s.duplicate_distance is not None and s.duplicate_distance <= DUPLICATE_MAX_DISTANCE,
        "impossible_travel": (s.travel_speed_kmh or 0.0) > IMPOSSIBLE_KMH and (s.travel_km or 0) >= TRAVEL_MIN_KM,
        "clock_skew": abs(s.clock_skew_s or 0.0) > CLOCK_SKEW_MAX_S,
        "low_resolution": low_resolution(s.width, s.height),
        "blurry": blurry(s.sharpness),
        "no_exif": s.kind == "image" and not s.has_exif,
        "poor_gps_accuracy": s.has_location and s.gps_accuracy_m is not None and s.gps_accuracy_m > POOR_ACCURACY_M,
        "type_mismatch": s.type_mismatch,
        "unchecked_video": s.kind == "video",  # no frame is analysed yet: people look at it
    }
    return [name for name, on in raised.items() if on]


FLAGS = (
    "nsfw",
    "outside_zone",
    "no_location",
    "duplicate",
    "impossible_travel",
    "clock_skew",
    "low_resolution",
    "blurry",
    "no_exif",
    "poor_gps_accuracy",
    "type_mismatch",
    "unchecked_video",
)
