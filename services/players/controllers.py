"""The caller's player profile in the request's territory."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody

from core.auth import Identity
from core.errors import territory_errors
from core.http import Conn
from services.players import service
from services.players.dto import Me, ProfileIn

READ_ERRORS = territory_errors()


def installed_languages(request: Request[Any, Any, Any]) -> list[str]:
    """The language codes the node has catalogs for (node/locales, read at start)."""
    return list(request.app.state.catalogs.codes)


class PlayerController(Controller):
    path = "/api/players"
    tags = ["players"]

    @get("/me", responses=READ_ERRORS, summary="The caller's player profile")
    async def me(self, db: NamedDependency[Conn], identity: NamedDependency[Identity]) -> Me:
        return await service.me(db, identity)

    @patch(
        "/me",
        responses=territory_errors(400),
        summary="Change the caller's display name, language or leaderboard presence",
        description="Fields left out stay as they are. `display_name` is trimmed (1 to 60 characters, no control "
        "characters); `language` is one of the node's catalogs, or null to follow the browser's; "
        "`on_leaderboards: false` leaves the player out of every leaderboard of the territory.",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        tx: NamedDependency[Conn],
        identity: NamedDependency[Identity],
        data: JSONBody[ProfileIn],
    ) -> Me:
        return await service.update_profile(tx, identity, data, installed_languages(request))
