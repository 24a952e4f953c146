"""HTTP endpoints of the built-in OIDC provider, under ``/oidc``.

The sign-in pages (``/authorize``, ``/login``) are HTML and stay out of the OpenAPI document;
discovery, JWKS, token and userinfo are JSON and documented. Token and userinfo errors use
the OAuth shape ``{"error", "error_description"}`` (RFC 6749 5.2, RFC 6750 3.1).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from redis.exceptions import RedisError

from core import ratelimit
from core.errors import Unavailable
from services.idp import service, templates
from services.idp.dto import JWKS, Discovery, OAuthErrorBody, TokenForm, TokenResponse, UserInfo
from services.idp.service import LoginRefused, OAuthError, OIDCProvider, PageError, RedirectError

BROWSER_COOKIE = "oh_idp_browser"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}
EXPIRED = "This sign-in form has expired or was already used."
BAD_FORM = "This sign-in form could not be checked (it was not sent from this browser's sign-in page)."


def _oauth_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=OAuthErrorBody, description=description)


def _oauth_error(exc: OAuthError) -> Response[Any]:
    return Response(
        OAuthErrorBody(exc.error, exc.description), status_code=exc.status, headers={**NO_STORE, **exc.headers}
    )


def _html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        page, status_code=status, media_type=MediaType.HTML, headers={**templates.HEADERS, **(headers or {})}
    )


def _redirect(url: str) -> Response[bytes]:
    return Response(b"", status_code=302, headers={"Location": url, **NO_STORE})


OIDCDep = NamedDependency[OIDCProvider]


def provide_oidc(request: Request[Any, Any, Any]) -> OIDCProvider:
    """The provider over the process's router, Redis and settings."""
    state = request.app.state
    return OIDCProvider(state.router, state.redis, state.settings)


def _unavailable() -> Unavailable:
    return Unavailable("the sign-in store (Redis) is unavailable", headers={"Retry-After": "5"})


class OIDCController(Controller):
    path = "/oidc"
    tags = ["oidc"]
    dependencies = {"oidc": Provide(provide_oidc, sync_to_thread=False)}

    @get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
    async def discovery(self, request: Request[Any, Any, Any]) -> Response[Discovery]:
        doc = msgspec.convert(service.discovery(request.app.state.settings), Discovery)
        return Response(doc, headers=PUBLIC_CACHE)

    @get("/jwks", summary="Public keys that sign the provider's ID tokens")
    async def jwks(self, request: Request[Any, Any, Any]) -> Response[JWKS]:
        ring = await service.key_ring(request.app.state.settings)
        return Response(msgspec.convert(ring.jwks(), JWKS), headers=PUBLIC_CACHE)

    @get("/authorize", include_in_schema=False)
    async def authorize_get(
        self, request: Request[Any, Any, Any], oidc: NamedDependency[OIDCProvider]
    ) -> Response[Any]:
        params = request.query_params
        return await self._authorize(request, oidc, {k: params.getall(k) for k in params})

    @post("/authorize", include_in_schema=False, status_code=200)
    async def authorize_post(
        self, request: Request[Any, Any, Any], oidc: NamedDependency[OIDCProvider]
    ) -> Response[Any]:
        form = await request.form()
        params = {k: [v for v in form.getall(k) if isinstance(v, str)] for k in form}
        return await self._authorize(request, oidc, params)

    async def _authorize(
        self, request: Request[Any, Any, Any], oidc: OIDCProvider, params: dict[str, list[str]]
    ) -> Response[Any]:
        settings = oidc.settings
        try:
            req = await oidc.validate_authorize(params)
        except PageError as exc:
            return _html(templates.error_page(exc.message), exc.status)
        except RedirectError as exc:
            return _redirect(service.error_redirect(settings, exc))
        browser = request.cookies.get(BROWSER_COOKIE) or ""
        if not 32 <= len(browser) <= 64:
            browser = secrets.token_urlsafe(32)
        try:
            login_id, pending = await oidc.start_login(req, browser)
        except RedisError:
            raise _unavailable() from None
        page = templates.login_page(req.client_name, login_id, pending.csrf, username=req.login_hint or "")
        response = _html(page)
        response.set_cookie(
            Cookie(
                key=BROWSER_COOKIE,
                value=browser,
                path="/oidc",
                httponly=True,
                samesite="lax",
                secure=service.issuer(settings).startswith("https://"),
            )
        )
        return response

    @post("/login", include_in_schema=False, status_code=200)
    async def login(self, request: Request[Any, Any, Any], oidc: OIDCDep) -> Response[Any]:
        form = await request.form()

        def field(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        login_id, username = field("login_id"), field("username")
        try:
            pending = await oidc.load_login(login_id)
            if pending is None:
                return _html(templates.error_page(EXPIRED), 400)
            if not service.login_form_ok(pending, field("csrf_token"), request.cookies.get(BROWSER_COOKIE)):
                return _html(templates.error_page(BAD_FORM), 403)

            def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response[str]:
                page = templates.login_page(
                    pending.client_name, login_id, pending.csrf, username=username, message=message
                )
                return _html(page, status, headers)

            client_ip = request.client.host if request.client else "-"
            try:
                account = await oidc.sign_in(username, field("password"), client_ip)
            except ratelimit.RateLimited as exc:
                wait = exc.headers.get("Retry-After", "60")
                return again(f"Too many sign-in attempts. Try again in {wait} seconds.", 429, exc.headers)
            except LoginRefused as exc:
                return again(str(exc), 400)
            if not await oidc.finish_login(login_id):
                return _html(templates.error_page(EXPIRED), 400)
            code = await oidc.issue_code(pending, account.id)
        except RedisError:
            raise _unavailable() from None
        return _redirect(service.success_redirect(oidc.settings, pending.redirect_uri, code, pending.state))

    @post(
        "/token",
        status_code=200,
        summary="Exchange an authorization code for an ID token and an access token",
        description=(
            "grant_type=authorization_code. Confidential clients authenticate with HTTP Basic "
            "(client_secret_basic) or client_id + client_secret in the form (client_secret_post); "
            "public clients send client_id and the PKCE code_verifier."
        ),
        responses={
            400: _oauth_spec("invalid_request, invalid_grant, unsupported_grant_type"),
            401: _oauth_spec("invalid_client"),
        },
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        oidc: OIDCDep,
        data: Annotated[TokenForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[TokenResponse]:
        form = await request.form()
        repeated = sorted(k for k in form if len(form.getall(k)) > 1)
        if repeated:
            return _oauth_error(OAuthError("invalid_request", f"repeated parameter(s): {', '.join(repeated)}"))
        values = {f: (getattr(data, f) or None) for f in TokenForm.__struct_fields__}
        try:
            body = await oidc.exchange_code(values, request.headers.get("authorization"))
        except OAuthError as exc:
            return _oauth_error(exc)
        except RedisError:
            raise _unavailable() from None
        return Response(msgspec.convert(body, TokenResponse), headers=NO_STORE)

    @get(
        "/userinfo",
        summary="Claims about the person an access token was issued for",
        responses={401: _oauth_spec("Missing, invalid or expired access token")},
    )
    async def userinfo(
        self, request: Request[Any, Any, Any], oidc: NamedDependency[OIDCProvider]
    ) -> Response[UserInfo]:
        try:
            claims = await oidc.userinfo(request.headers.get("authorization"))
        except OAuthError as exc:
            return _oauth_error(exc)
        except RedisError:
            raise _unavailable() from None
        return Response(msgspec.convert(claims, UserInfo), headers=NO_STORE)
