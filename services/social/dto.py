from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from services.proofs.dto import Proof, QuestPlace

VoteValue = Literal["agree", "disagree"]


class VoteIn(msgspec.Struct, forbid_unknown_fields=True):
    value: VoteValue


class SettleIn(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["validated", "rejected"]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Vote(msgspec.Struct):
    voter_id: uuid.UUID
    value: str
    source: str  # "matrix" or "web"
    homeserver: str | None
    counts: bool  # false for the author's own vote
    updated_at: datetime


class Votes(msgspec.Struct):
    proof_id: uuid.UUID
    status: str
    witnesses: int
    agree: float  # weighted
    disagree: float
    outcome: str | None
    min_witnesses: int
    agreement_needed: float
    votes: list[Vote]


class LinkCode(msgspec.Struct):
    code: str
    expires_at: datetime
    homeserver: str | None
    bot: str | None
    how: str


class MatrixLink(msgspec.Struct):
    mxid: str
    via: str
    linked_at: datetime


class Decided(msgspec.Struct):
    outcome: str  # "validated" or "rejected"
    witnesses: int
    agreement: float
    settled: bool  # by a moderator rather than the quorum
    reason: str | None
    decided_at: datetime


class ReviewItem(msgspec.Struct):
    """A proof waiting for witnesses, as a reviewer sees it."""

    proof: Proof
    quest: QuestPlace
    witnesses: int
    agree: float  # weighted
    disagree: float
    min_witnesses: int
    agreement_needed: float
    my_vote: VoteValue | None  # the caller's current vote
    cannot_vote: Literal["author", "no_role"] | None  # why the caller may not vote; None when they may


class ReviewPage(msgspec.Struct):
    items: list[ReviewItem]
    next_cursor: str | None


class ZoneRoom(msgspec.Struct):
    zone_id: uuid.UUID
    room_id: str
    alias: str  # #oh_<territory>_<zone slug>_<id>:<homeserver>
