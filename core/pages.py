"""Server-rendered pages: templates in the reader's language, the security headers every page
carries, CSRF checks, and errors shown as pages.

A page handler asks for the same dependencies as a JSON handler (``identity``, ``db``,
``tx``...), calls the same service functions, and answers ``page(request, "quests/list.html",
quests=...)``. Templates live beside their domain (``services/<domain>/templates/<domain>/``;
the layout and shared pieces in ``core/templates/``). An htmx request (``HX-Request``) gets
the same template; a template may render only its ``content`` block for it (``partial``).

The browser's session (``services/auth/sessions.py``) puts the signed-in identity where
``core.auth`` looks for it and its CSRF token in ``scope["oh_session"]``; every request that
changes something must send that token (``X-CSRF-Token`` header, or a ``csrf`` form field).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import jinja2
import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect

from core.assets import Assets
from core.auth import identity_of
from core.errors import AppError, Forbidden, Unauthorized
from core.i18n import Catalogs, Formats
from core.settings import Settings

log = structlog.get_logger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION = "oh_session"  # scope key: the browser session (its .csrf, .lang)
SESSION_ENDED = "oh_session_ended"  # scope key: a cookie came but its session is gone
LANGUAGE_COOKIE = "oh_lang"  # the language picked in this browser


class BrowserSession(Protocol):
    csrf: str
    lang: str | None


class CsrfRefused(Forbidden):
    code = "csrf_refused"


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> BrowserSession | None:
    return connection.scope.get(SESSION)  # type: ignore[call-overload, no-any-return]


class Pages:
    """One Jinja environment per installed language (templates compiled once each)."""

    def __init__(self, settings: Settings, template_dirs: list[Path], catalogs: Catalogs, assets: Assets) -> None:
        self.settings, self.catalogs, self.assets = settings, catalogs, assets
        loader = jinja2.FileSystemLoader([str(d) for d in template_dirs])
        self._envs: dict[str, jinja2.Environment] = {}
        for code in catalogs.codes:
            env = jinja2.Environment(
                loader=loader,
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(catalogs.translations(code), newstyle=True)  # type: ignore[attr-defined]
            fmt = Formats(code, settings.web.time_zone)
            env.filters.update(
                number=fmt.number,
                percent=fmt.percent,
                datetime=fmt.datetime,
                date=fmt.date,
                ago=fmt.ago,
                urlquote=lambda v: quote(str(v), safe=""),
            )
            env.globals.update(asset=assets.url, languages=catalogs.names(), web=settings.web)
            self._envs[code] = env
        self.csp = content_security_policy(settings)

    def language(self, request: Request[Any, Any, Any]) -> str:
        """The language picked in this browser (cookie), else the profile's, else the browser's."""
        picked = request.cookies.get(LANGUAGE_COOKIE)
        if picked in self.catalogs.codes:
            return picked  # type: ignore[return-value]
        session = session_of(request)
        return self.catalogs.choose(session.lang if session else None, request.headers.get("accept-language"))

    def render(
        self,
        request: Request[Any, Any, Any],
        template: str,
        context: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response[str]:
        lang = self.language(request)
        session = session_of(request)
        try:
            identity = identity_of(request)
        except AppError:
            identity = None
        base = {
            "request": request,
            "path": request.url.path,
            "lang": lang,
            "csrf": session.csrf if session else "",
            "identity": identity,
            "signed_in": identity is not None and session is not None,
            "partial": request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true",
        }
        html = self._envs[lang].get_template(template).render({**base, **context})
        return Response(
            html,
            status_code=status,
            media_type="text/html; charset=utf-8",
            headers={**self.headers(), "Content-Language": lang, "Vary": "Accept-Language, Cookie, HX-Request"}
            | (headers or {}),
        )

    def headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Permissions-Policy": "camera=(self), geolocation=(self), microphone=()",
            "Cache-Control": "no-store",
        }


def content_security_policy(settings: Settings) -> str:
    """No inline scripts or styles anywhere; map tiles only from the configured tile server."""
    tiles = ""
    if settings.web.tile_url:
        parts = urlsplit(settings.web.tile_url.replace("{s}", "a"))
        if parts.scheme in ("https", "http") and parts.netloc:
            host = parts.netloc.replace("a.", "*.", 1) if "{s}" in settings.web.tile_url else parts.netloc
            tiles = f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{tiles}; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; "
        "manifest-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """Render ``template`` in the reader's language with the page's security headers."""
    pages: Pages = request.app.state.pages
    return pages.render(request, template, context, status, headers)


def back_to(target: str | None, default: str = "/app") -> str:
    """A local path to return to after a step (never another site: no scheme, no //host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 500:
        return default
    return target


def redirect(request: Request[Any, Any, Any], to: str) -> Response[Any]:
    """After a form post: a 303 for a plain browser, ``HX-Redirect`` for htmx."""
    if request.headers.get("hx-request") == "true":
        return Response("", status_code=204, headers={"HX-Redirect": to})
    return Redirect(to, status_code=303)


# --- CSRF -----------------------------------------------------------------------------------
async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Every state-changing request of a signed-in browser carries its session's CSRF token
    and, when the browser says where it comes from, comes from this node."""
    if connection.scope.get("method", "GET") in SAFE_METHODS or handler.opt.get("csrf") == "none":
        return
    settings: Settings = connection.app.state.settings
    origin = connection.headers.get("origin")
    if origin and origin != _origin(settings.http.public_url):
        raise CsrfRefused("this request came from another site; nothing was changed")
    if connection.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise CsrfRefused("this request came from another site; nothing was changed")
    session = session_of(connection)
    if session is None:
        raise Unauthorized("your session has ended; sign in again (nothing was changed)")
    sent = connection.headers.get("x-csrf-token")
    if sent is None:
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await Request(connection.scope, connection.receive).form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused("this form is missing its security token or it expired; reload the page and try again")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- errors as pages ------------------------------------------------------------------------
def _error_page(request: Request[Any, Any, Any], status: int, code: str, detail: str, headers: dict[str, str]) -> Any:
    if status >= 500:
        log.warning("page answered an error", path=request.url.path, status=status, code=code, detail=detail)
    if status == 401 and request.method == "GET" and request.headers.get("hx-request") != "true":
        ended = "&ended=1" if request.scope.get(SESSION_ENDED) else ""  # type: ignore[call-overload]
        return Redirect(f"/app/signin?next={quote(request.url.path, safe='/')}{ended}", status_code=303)
    extra = dict(headers)
    if request.headers.get("hx-request") == "true":
        # An htmx action shows the error in the page's message area instead of swapping it in.
        extra.update({"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})
        return page(request, "error_message.html", status=status, headers=extra, code=code, detail=detail)
    return page(request, "error.html", status=status, headers=extra, status_code=status, code=code, detail=detail)


def app_error_page(request: Request[Any, Any, Any], exc: AppError) -> Any:
    return _error_page(request, exc.status, exc.code, exc.detail, exc.headers)


def refusals(template: str, codes: frozenset[str]) -> Any:
    """A page controller's exception handler: the errors whose codes it names get the domain's
    own refusal page (one sentence per code, with the error's numbers in ``params``); any
    other error gets the kit's error page."""

    def handler(request: Request[Any, Any, Any], exc: AppError) -> Any:
        if exc.code not in codes:
            return app_error_page(request, exc)
        params = getattr(exc, "params", {})
        return page(request, template, status=exc.status, code=exc.code, detail=exc.detail, params=params)

    return handler


def validation_page(request: Request[Any, Any, Any], exc: ValidationException) -> Any:
    fields = [
        f"{e.get('key') or ''}: {e.get('message', '')}".strip(": ")
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    return _error_page(request, 400, "invalid_request", "; ".join(fields) or str(exc.detail), {})


def http_error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Any:
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        status = 401
    if status >= 500:
        log.error("page failed", path=request.url.path, status=status, error=str(exc.detail))
        return _error_page(request, status, "unavailable", "something went wrong on our side; try again", {})
    return _error_page(request, status, "error", str(exc.detail), dict(exc.headers or {}))


def crash_page(request: Request[Any, Any, Any], exc: Exception) -> Any:
    log.exception("page crashed", path=request.url.path, error_type=type(exc).__name__)
    return _error_page(request, 500, "internal_error", "something went wrong on our side; try again", {})


PAGE_EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: app_error_page,
    ValidationException: validation_page,
    HTTPException: http_error_page,
    Exception: crash_page,
}
