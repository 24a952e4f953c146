"""The player app's shell: the PWA manifest and service worker, the live stream of a signed-in
browser, the language picker, and a page for an unknown address under /app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from litestar.response import Redirect, ServerSentEvent

from core.auth import Identity
from core.errors import NotFound
from core.pages import LANGUAGE_COOKIE, back_to, page
from core.routing import Territory
from services.notifications import live
from services.notifications.controllers import provide_streams

STATIC = Path(__file__).resolve().parent / "static"


class ShellPages(Controller):
    include_in_schema = False
    opt = {"rate_group": None}

    @get("/app/manifest.webmanifest", media_type="application/manifest+json")
    async def manifest(self) -> Response[bytes]:
        return Response(
            (STATIC / "manifest.webmanifest").read_bytes(), headers={"Cache-Control": "public, max-age=3600"}
        )

    @get("/app/sw.js", media_type="text/javascript")
    async def service_worker(self) -> Response[bytes]:
        # Served under /app so that its scope is the whole app; never cached by the HTTP cache,
        # so a new release's worker is seen at the next visit.
        # Its scope is "/app" (the home page included), one step above its folder "/app/":
        # Service-Worker-Allowed permits it.
        return Response(
            (STATIC / "sw.js").read_bytes(), headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/app"}
        )

    @get("/app/offline")
    async def offline(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """What the service worker shows for a page it cannot reach. Nobody's: rendered as if
        signed out (no token, no name), so the worker may keep it."""
        return page(
            request,
            "offline.html",
            headers={"Cache-Control": "public, max-age=86400"},
            signed_in=False,
            identity=None,
            csrf="",
        )

    @get("/app/language")
    async def language(
        self,
        request: Request[Any, Any, Any],
        lang: Annotated[str, QueryParameter(pattern=r"^[a-z]{2,3}$")],
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
    ) -> Response[Any]:
        """Remember the language picked in this browser (a cookie; the profile keeps one too)."""
        if lang not in request.app.state.pages.catalogs.codes:
            raise NotFound(f"no catalog for language {lang!r}")
        cookie = Cookie(key=LANGUAGE_COOKIE, value=lang, path="/", max_age=365 * 86400, samesite="lax")
        return Redirect(back_to(next_path), status_code=303, cookies=[cookie])

    @get("/app/live", dependencies={"streams": Provide(provide_streams, sync_to_thread=False)})
    async def live(
        self,
        streams: NamedDependency[live.Streams],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", required=False, pattern=r"^[0-9]{1,18}$")
        ] = None,
    ) -> ServerSentEvent:
        """The signed-in player's notifications as they happen (the API's stream, by session)."""
        last = int(last_event_id) if last_event_id is not None else None
        return ServerSentEvent(streams.open(territory, identity.user_id, last))

    @get("/app/{rest:path}")
    async def unknown(self, rest: Annotated[str, PathParameter()]) -> None:
        raise NotFound(f"there is no page at /app{rest}")
