from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar.datastructures import UploadFile


class EvidenceInfo(msgspec.Struct):
    cid: str
    sha256: str
    size_bytes: int
    mime: str
    kind: str
    width: int | None
    height: int | None
    exif: dict[str, Any]


class Proof(msgspec.Struct):
    id: uuid.UUID
    quest_id: uuid.UUID
    assignment_id: uuid.UUID
    player_id: uuid.UUID
    status: str
    lat: float
    lng: float
    accuracy_m: float
    captured_at: datetime
    received_at: datetime
    score: int | None
    flags: list[str]
    verified_at: datetime | None
    evidence: EvidenceInfo
    # What the player declared the deed measured (counted in the payout once witnesses validate).
    duration_minutes: int | None = None
    beneficiaries: int | None = None
    paid_at: datetime | None = None


class ProofPage(msgspec.Struct):
    items: list[Proof]
    next_cursor: str | None


class ProofAccepted(msgspec.Struct):
    proof_id: uuid.UUID
    cid: str
    status: str


class QuestPlace(msgspec.Struct):
    """A proof's quest and the zone it is in."""

    quest_id: uuid.UUID
    title: str
    zone_id: uuid.UUID
    zone_name: str
    zone_lat: float
    zone_lng: float
    zone_radius_m: float


@dataclass
class ProofForm:
    """multipart/form-data: one photo or short video, where and when it was taken, and
    optionally what the deed measured (minutes spent, people helped). The JSON API and the
    player app's capture page take the same form."""

    file: UploadFile
    lat: float
    lng: float
    accuracy_m: float
    captured_at: datetime
    duration_minutes: int | None = None
    beneficiaries: int | None = None
