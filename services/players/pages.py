"""The player's home page (``/app``): where they stand, and what happened lately; and their
profile (``/app/profile``): name, language, leaderboards, the Matrix account they vote with."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.pages import LANGUAGE_COOKIE, page, redirect
from core.routing import Territory
from services.auth.service import remember_language
from services.impact import service as impact
from services.notifications import service as notifications
from services.players import service
from services.players.dto import ProfileIn
from services.social import service as social
from services.social.dto import LinkCode
from services.zones.service import list_zones

Db = NamedDependency[AsyncConnection]
RECENT = 5
ZONES_LISTED = 200


class PlayerPages(Controller):
    include_in_schema = False

    @get("/app")
    async def home(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Response[Any]:
        standing = await impact.standing(db, identity)
        recent = await notifications.list_notifications(
            db, identity.user_id, unread_only=False, limit=RECENT, cursor=None
        )
        return page(request, "players/home.html", standing=standing, recent=recent, territory=territory)

    @get("/app/profile")
    async def profile(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        zone: Annotated[uuid.UUID | None, QueryParameter(description="The zone whose room to show")] = None,
        saved: Annotated[int | None, QueryParameter()] = None,
    ) -> Response[Any]:
        return await _profile(request, db, territory, identity, zone=zone, saved=bool(saved))

    @post("/app/profile")
    async def save(
        self,
        request: Request[Any, Any, Any],
        tx: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Response[Any]:
        """The form's changes through the same service call as ``PATCH /api/players/me``."""
        form = await request.form()
        name, language = form.get("display_name"), form.get("language")
        # The checkbox comes after a hidden "0": unchecked sends only that; a form without
        # either leaves the setting alone.
        shown = form.getall("on_leaderboards") if "on_leaderboards" in form else []
        changes = ProfileIn(
            display_name=name if isinstance(name, str) else msgspec.UNSET,
            language=(language or None) if isinstance(language, str) else msgspec.UNSET,
            on_leaderboards=("1" in shown) if shown else msgspec.UNSET,
        )
        codes = request.app.state.pages.catalogs.codes
        try:
            me = await service.update_profile(tx, identity, changes, codes)
        except service.InvalidProfile as refused:
            # Checked before anything is written: the form again, with what was typed and why.
            return await _profile(request, tx, territory, identity, refused=refused, typed=changes, status=400)
        sid = request.scope.get("oh_sid")  # type: ignore[call-overload]
        await remember_language(request.app.state, sid if isinstance(sid, str) else None, me.language)
        response = redirect(request, "/app/profile?saved=1")
        if me.language:
            response.cookies.append(
                Cookie(key=LANGUAGE_COOKIE, value=me.language, path="/", max_age=365 * 86400, samesite="lax")
            )
        else:  # the browser's language from now on
            response.cookies.append(Cookie(key=LANGUAGE_COOKIE, value="", path="/", max_age=0, samesite="lax"))
        return response

    @post("/app/profile/link-code")
    async def link_code(
        self,
        request: Request[Any, Any, Any],
        tx: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
    ) -> Response[Any]:
        """A one-time Matrix link code (``POST /api/social/link-code``'s call), shown once."""
        ttl = request.app.state.settings.matrix.link_code_ttl
        code = await social.link_code(tx, identity, territory, ttl)
        return await _profile(request, tx, territory, identity, code=code)


async def _profile(
    request: Request[Any, Any, Any],
    conn: AsyncConnection,
    territory: Territory,
    identity: Identity,
    *,
    zone: uuid.UUID | None = None,
    saved: bool = False,
    code: LinkCode | None = None,
    refused: service.InvalidProfile | None = None,
    typed: ProfileIn | None = None,
    status: int = 200,
) -> Response[Any]:
    me = await service.me(conn, identity)
    links = await social.links_of(conn, identity.user_id)
    zones, _ = await list_zones(conn, limit=ZONES_LISTED, cursor=None)
    zone = zone or await impact.recent_zone(conn, identity.user_id) or (zones[0].id if zones else None)
    room = await social.zone_room(conn, zone) if zone else None
    form = {
        "display_name": me.display_name,
        "language": me.language,
        "on_leaderboards": me.on_leaderboards,
    }
    if typed is not None:
        form.update({k: v for k, v in msgspec.structs.asdict(typed).items() if v is not msgspec.UNSET})
    return page(
        request,
        "players/profile.html",
        status=status,
        me=me,
        form=form,
        languages=request.app.state.pages.catalogs.names(),
        links=links,
        zones=zones,
        zone=next((z for z in zones if z.id == zone), None),
        room=room,
        homeserver=territory.matrix_homeserver,
        bot=social.bot_of(territory.matrix_homeserver),
        code=code,
        saved=saved,
        refused=refused,
        territory=territory,
    )
