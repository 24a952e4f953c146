"""Login through the territory's identity provider, node tokens, refresh, logout, JWKS.

Rate limits (per client IP, or per user when the request carries a node token), each kind
on its own: starting a login (``rate_limit_login``), redeeming its code (``rate_limit_token``),
refreshing and logging out (``rate_limit_refresh``). The provider's callback counts with the
API (``rate_limit_api``); password attempts are limited by the provider itself."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, QueryParameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import InvalidInput, app_error_handler, error_responses
from services.auth.dto import CodeGrant, RefreshIn, TokenPair
from services.auth.service import LoginBroker, TokenReused, broker_of, issue_tokens, refresh_tokens_of, revoke

Code = Annotated[str, QueryParameter(name="territory", pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]
Challenge = Annotated[str, QueryParameter(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
Conn = AsyncConnection

# What each route may answer besides its success (error_responses adds 400 to each).
# 503: the registry database or the login store (Redis) is unavailable.
LOGIN_ERRORS = error_responses(404, 423, 429, 503)
TOKEN_ERRORS = error_responses(429, 503)
REFRESH_ERRORS = error_responses(401, 429, 503)
LOGOUT_ERRORS = error_responses(429, 503)


def provide_broker(request: Request[Any, Any, Any]) -> LoginBroker:
    return broker_of(request.app.state)


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    dependencies = {"broker": Provide(provide_broker, sync_to_thread=False)}

    @get(
        "/login",
        status_code=302,
        responses=LOGIN_ERRORS,
        summary="Start a login (app PKCE S256)",
        opt={"rate_group": "login"},
    )
    async def login(
        self,
        broker: NamedDependency[LoginBroker],
        territory_code: Code,
        client_id: Annotated[str, QueryParameter(min_length=1, max_length=100)],
        redirect_uri: Annotated[str, QueryParameter(min_length=1, max_length=500)],
        app_state: Annotated[str, QueryParameter(name="state", min_length=8, max_length=200)],
        code_challenge: Challenge,
        code_challenge_method: Annotated[str, QueryParameter(pattern="^S256$")] = "S256",
    ) -> Redirect:
        url = await broker.start(
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
        broker: NamedDependency[LoginBroker],
        login_state: Annotated[str, QueryParameter(name="state", max_length=200)],
        code: Annotated[str | None, QueryParameter(max_length=500)] = None,
        error: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> Redirect:
        return Redirect(await broker.callback(login_state, code, error))

    @post(
        "/token",
        status_code=200,
        responses=TOKEN_ERRORS,
        summary="Redeem the login code for tokens",
        opt={"rate_group": "token"},
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        broker: NamedDependency[LoginBroker],
        registry_tx: NamedDependency[Conn],
        data: Annotated[CodeGrant, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> TokenPair:
        if data.grant_type != "authorization_code":
            raise InvalidInput("grant_type must be authorization_code (refresh: POST /api/auth/refresh)")
        user_id = await broker.redeem_app_code(
            code=data.code, client_id=data.client_id, redirect_uri=data.redirect_uri, verifier=data.code_verifier
        )
        state = request.app.state
        return await issue_tokens(registry_tx, state.settings, state.node_keys, user_id, data.client_id)

    @post(
        "/refresh",
        status_code=200,
        responses=REFRESH_ERRORS,
        summary="Rotate a refresh token",
        opt={"rate_group": "refresh"},
    )
    async def refresh(
        self, request: Request[Any, Any, Any], registry_tx: NamedDependency[Conn], data: JSONBody[RefreshIn]
    ) -> Response[TokenPair]:
        state = request.app.state
        try:
            pair = await refresh_tokens_of(registry_tx, state.settings, state.node_keys, data.refresh_token)
        except TokenReused as exc:
            # The family revocation must stick: answer the 401 without raising, so that
            # registry_tx commits it.
            return app_error_handler(request, exc)  # type: ignore[return-value]
        return Response(pair)

    @post(
        "/logout",
        status_code=204,
        responses=LOGOUT_ERRORS,
        summary="Revoke this login's refresh tokens",
        opt={"rate_group": "refresh"},
    )
    async def logout(self, registry_tx: NamedDependency[Conn], data: JSONBody[RefreshIn]) -> None:
        await revoke(registry_tx, data.refresh_token)


class JwksController(Controller):
    tags = ["auth"]
    opt = {"rate_group": None}

    @get("/.well-known/jwks.json", summary="Public keys that verify node access tokens")
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return request.app.state.node_keys.jwks()  # type: ignore[no-any-return]
