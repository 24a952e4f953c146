"""Player rows: created at login in the home territory, or on first action in another one."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Collection

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import InvalidInput, NotFound
from core.routing import territory_of
from services.players.dto import NAME_MAX, Me, ProfileIn
from services.players.models import players

# Characters a display name may not hold besides control characters (Unicode category Cc):
# line and paragraph separators, and the bidirectional embeddings, overrides and isolates that
# would reorder the text around a name on a leaderboard.
_FORBIDDEN = {"\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


async def ensure_player(conn: AsyncConnection, user_id: uuid.UUID, display_name: str | None = None) -> None:
    """Make sure the person has a player in this territory (a no-op when they already do)."""
    name = display_name or f"player-{str(user_id)[:8]}"
    await conn.execute(insert(players).values(id=user_id, display_name=name).on_conflict_do_nothing())


async def me(conn: AsyncConnection, identity: Identity) -> Me:
    """The caller's player in the connection's territory; 404 when they have none there yet."""
    territory = territory_of(conn)
    row = (await conn.execute(sa.select(players).where(players.c.id == identity.user_id))).first()
    if row is None:
        raise NotFound(f"you have no player in territory {territory!r} yet")
    m = row._mapping
    return Me(
        id=m["id"],
        territory=territory,
        home_territory=identity.home,
        display_name=m["display_name"],
        level=m["level"],
        xp=m["xp"],
        roles=identity.roles,
        joined_at=m["created_at"],
        language=m["language"],
        on_leaderboards=m["on_leaderboards"],
    )


class InvalidProfile(InvalidInput):
    """A profile change refused: ``field`` and ``reason`` (a code) say why, for a form to show."""

    def __init__(self, detail: str, field: str, reason: str) -> None:
        super().__init__(detail)
        self.field, self.reason = field, reason


def clean_display_name(raw: str) -> str:
    """A display name as stored: NFC, trimmed, 1 to 60 characters, no control characters
    (:class:`InvalidInput` otherwise)."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise InvalidProfile("the display name is empty", "display_name", "empty")
    if len(name) > NAME_MAX:
        raise InvalidProfile(f"the display name is longer than {NAME_MAX} characters", "display_name", "long")
    if any(unicodedata.category(c) == "Cc" or c in _FORBIDDEN for c in name):
        raise InvalidProfile("the display name holds a control character", "display_name", "control")
    return name


async def update_profile(
    conn: AsyncConnection, identity: Identity, changes: ProfileIn, languages: Collection[str]
) -> Me:
    """Change the caller's display name, language (one of ``languages``, the installed
    catalogs, or None for the browser's) and whether they appear on leaderboards; fields left
    unset stay. Checks everything before it writes anything (in ``conn``'s transaction)."""
    values: dict[str, object] = {}
    if changes.display_name is not msgspec.UNSET:
        values["display_name"] = clean_display_name(changes.display_name)
    if changes.language is not msgspec.UNSET:
        if changes.language is not None and changes.language not in languages:
            raise InvalidProfile(
                f"there is no catalog for language {changes.language!r}; choose one of {', '.join(languages)}",
                "language",
                "unknown",
            )
        values["language"] = changes.language
    if changes.on_leaderboards is not msgspec.UNSET:
        values["on_leaderboards"] = changes.on_leaderboards
    await ensure_player(conn, identity.user_id)
    if values:
        await conn.execute(players.update().where(players.c.id == identity.user_id).values(**values))
    return await me(conn, identity)


async def language_of(conn: AsyncConnection, user_id: uuid.UUID) -> str | None:
    """The language in the person's profile in this territory (None: none chosen, or no player)."""
    found = await conn.execute(sa.select(players.c.language).where(players.c.id == user_id))
    return found.scalar_one_or_none()
