from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from core.text import NO_NUL, VISIBLE

QuestType = Literal["daily", "story", "community", "ascension"]
AssignmentStatus = Literal["available", "active", "submitted", "completed", "failed"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=VISIBLE)]
Description = Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)]
Category = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,39}$", description="e.g. beach_cleanup, trees, teaching")
]


class QuestIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    type: QuestType
    category: Category
    zone_id: uuid.UUID
    base_xp: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    base_tokens: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    difficulty: Annotated[int, msgspec.Meta(ge=1, le=5)]
    description: Description = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_completions: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1


class Quest(msgspec.Struct):
    id: uuid.UUID
    zone_id: uuid.UUID
    title: str
    description: str
    type: str
    category: str
    base_xp: int
    base_tokens: int
    difficulty: int
    starts_at: datetime | None
    ends_at: datetime | None
    max_completions: int
    created_at: datetime
    # The caller's standing: "available" until started, then the open or last assignment's status.
    my_status: AssignmentStatus = "available"
    my_completions: int = 0
    distance_m: float | None = None


class QuestPage(msgspec.Struct):
    items: list[Quest]
    next_cursor: str | None


class Assignment(msgspec.Struct):
    id: uuid.UUID
    quest_id: uuid.UUID
    quest_title: str
    status: str
    started_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


class AssignmentPage(msgspec.Struct):
    items: list[Assignment]
    next_cursor: str | None
