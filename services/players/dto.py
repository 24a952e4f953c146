from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from core.text import NO_NUL

NAME_MAX = 60
Language = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2,3}$", description="A language code the node has a catalog for")
]


class Me(msgspec.Struct):
    id: uuid.UUID
    territory: str
    home_territory: str
    display_name: str
    level: int
    xp: int
    roles: dict[str, list[str]]
    joined_at: datetime
    language: str | None  # the profile's language (None: the browser's)
    on_leaderboards: bool


class ProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a player changes in their profile; a field left out stays as it is."""

    display_name: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=NAME_MAX,
                pattern=NO_NUL,
                description="1 to 60 characters once trimmed; no control characters",
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    language: Language | msgspec.UnsetType | None = msgspec.UNSET  # null: follow the browser
    on_leaderboards: bool | msgspec.UnsetType = msgspec.UNSET
