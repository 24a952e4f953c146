"""Login through the territory's identity provider, node tokens, refresh, logout, JWKS."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, QueryParameter
from litestar.response import Redirect

from core.auth import issue_access
from core.errors import InvalidInput, error_responses
from core.routing import Router
from core.urls import with_query
from services.auth import broker
from services.auth.tokens import TokenReused, identity_for, issue_refresh, revoke, rotate_refresh, token_response


class TokenPair(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class CodeGrant(msgspec.Struct):
    grant_type: str
    code: str
    client_id: str
    redirect_uri: str
    code_verifier: str = ""


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


Code = Annotated[str, QueryParameter(name="territory", pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]
Challenge = Annotated[str, QueryParameter(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


def discovery(request: Request[Any, Any, Any]) -> broker.Discovery:
    """The process's provider metadata cache (made on first use)."""
    state = request.app.state
    if getattr(state, "discovery", None) is None:
        state.discovery = broker.Discovery(state.http)
    return state.discovery  # type: ignore[no-any-return]


async def _tokens(request: Request[Any, Any, Any], router: Router, user_id: Any, client_id: str) -> TokenPair:
    state = request.app.state
    async with router.registry_transaction() as conn:
        identity = await identity_for(conn, user_id)
        refresh = await issue_refresh(conn, state.settings, user_id, client_id)
    access = issue_access(state.node_keys, state.settings, identity)
    return msgspec.convert(token_response(access, refresh, state.settings), TokenPair)


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    opt = {"rate_group": "login"}

    @get(
        "/login",
        status_code=302,
        responses=error_responses(404, 423, 429, 503),
        summary="Start a login (app PKCE S256)",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        territory_code: Code,
        client_id: Annotated[str, QueryParameter(min_length=1, max_length=100)],
        redirect_uri: Annotated[str, QueryParameter(min_length=1, max_length=500)],
        app_state: Annotated[str, QueryParameter(name="state", min_length=8, max_length=200)],
        code_challenge: Challenge,
        code_challenge_method: Annotated[str, QueryParameter(pattern="^S256$")] = "S256",
    ) -> Redirect:
        url = await broker.start_login(
            router,
            request.app.state.redis,
            discovery(request),
            territory=territory_code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            app_state=app_state,
            code_challenge=code_challenge,
        )
        return Redirect(url, status_code=302)

    @get("/callback", status_code=302, include_in_schema=False)
    async def callback(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        login_state: Annotated[str, QueryParameter(name="state", max_length=200)],
        code: Annotated[str | None, QueryParameter(max_length=500)] = None,
        error: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> Redirect:
        app = request.app.state
        txn = await broker.take_login(app.redis, login_state)
        back = {"state": txn["app_state"]}
        if error or not code:
            return Redirect(with_query(txn["redirect_uri"], {**back, "error": error or "access_denied"}))
        try:
            claims = await broker.redeem_provider_code(router, discovery(request), txn, code)
        except broker.LoginFailed as exc:
            params = {**back, "error": "login_failed", "error_description": exc.detail}
            return Redirect(with_query(txn["redirect_uri"], params))
        user_id = await broker.link_person(router, txn["territory"], claims)
        app_code = await broker.issue_app_code(app.redis, app.settings, txn, user_id)
        return Redirect(with_query(txn["redirect_uri"], {**back, "code": app_code}))

    @post("/token", status_code=200, responses=error_responses(429), summary="Redeem the login code for tokens")
    async def token(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        data: Annotated[CodeGrant, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> TokenPair:
        if data.grant_type != "authorization_code":
            raise InvalidInput("grant_type must be authorization_code (refresh: POST /api/auth/refresh)")
        user_id = await broker.redeem_app_code(
            request.app.state.redis,
            code=data.code,
            client_id=data.client_id,
            redirect_uri=data.redirect_uri,
            verifier=data.code_verifier,
        )
        return await _tokens(request, router, user_id, data.client_id)

    @post("/refresh", status_code=200, responses=error_responses(401, 429), summary="Rotate a refresh token")
    async def refresh(
        self, request: Request[Any, Any, Any], router: NamedDependency[Router], data: JSONBody[RefreshIn]
    ) -> TokenPair:
        state = request.app.state
        try:
            async with router.registry_transaction() as conn:
                user_id, _client, new_refresh = await rotate_refresh(conn, state.settings, data.refresh_token)
                identity = await identity_for(conn, user_id)
        except TokenReused:
            # The family revocation must stick: do it in its own committed transaction.
            async with router.registry_transaction() as conn:
                await revoke(conn, data.refresh_token)
            raise
        access = issue_access(state.node_keys, state.settings, identity)
        return msgspec.convert(token_response(access, new_refresh, state.settings), TokenPair)

    @post("/logout", status_code=204, responses=error_responses(429), summary="Revoke this login's refresh tokens")
    async def logout(self, router: NamedDependency[Router], data: JSONBody[RefreshIn]) -> None:
        async with router.registry_transaction() as conn:
            await revoke(conn, data.refresh_token)


class JwksController(Controller):
    tags = ["auth"]
    opt = {"rate_group": None}

    @get("/.well-known/jwks.json", summary="Public keys that verify node access tokens")
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return request.app.state.node_keys.jwks()  # type: ignore[no-any-return]
