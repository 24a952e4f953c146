"""Signing in and out of the player app (``/app/signin``, ``/app/callback``, ``/app/signout``).

The web app is an ordinary app client of the node's login broker (``oneheart-web``, redirect
URI ``<public_url>/app/callback``): the same OIDC login, with PKCE, as the mobile app, except
that the code is redeemed here on the server and the tokens stay in the session store
(:mod:`services.auth.sessions`). The login's state is bound to the browser by a short-lived
HttpOnly cookie, so a login started elsewhere cannot be finished in this browser.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Annotated, Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Redirect

from core.pages import back_to, page, redirect
from core.redis import prefix
from core.routing import Router
from services.auth.service import (
    LoginBroker,
    LoginFailed,
    broker_of,
    identity_for,
    issue_tokens,
    territories_with_login,
)
from services.auth.sessions import sessions_of
from territories.registry import Registry

WEB_CLIENT = "oneheart-web"
LOGIN_COOKIE = "oh_login"
TERRITORY_COOKIE = "oh_territory"  # the territory this browser signed in to last
YEAR = 365 * 86400
Code = Annotated[str, QueryParameter(name="territory", pattern=r"^[a-z][a-z0-9_]{1,30}$", description="Territory code")]


def _redirect_uri(request: Request[Any, Any, Any]) -> str:
    return f"{request.app.state.settings.http.public_url}/app/callback"


def _login_key(request: Request[Any, Any, Any], state: str) -> str:
    return f"{prefix(request.app.state.settings)}weblogin:{hashlib.sha256(state.encode()).hexdigest()}"


def _broker(request: Request[Any, Any, Any]) -> LoginBroker:
    return broker_of(request.app.state)


class SignInPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    dependencies = {"broker": Provide(_broker, sync_to_thread=False)}
    # Counted as the JSON API counts the same steps, once per sign-in each: starting the
    # login ("login"), redeeming its code ("token"); the picker is an ordinary page.

    @get("/app/signin")
    async def signin(
        self,
        request: Request[Any, Any, Any],
        router: NamedDependency[Router],
        registry_db: NamedDependency[Any],
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
        ended: Annotated[int | None, QueryParameter()] = None,
        signed_out: Annotated[int | None, QueryParameter()] = None,
    ) -> Response[Any]:
        """The territory picker (skipped to the sign-in itself when the node serves one territory)."""
        codes = await territories_with_login(registry_db)
        territories = [t for t in await Registry(router, "web").all_territories(status="active") if t.code in codes]
        last = request.cookies.get(TERRITORY_COOKIE)
        return page(
            request,
            "auth/signin.html",
            territories=territories,
            next_path=back_to(next_path),
            ended=bool(ended),
            signed_out=bool(signed_out),
            last_territory=last if last in codes else None,
        )

    @get("/app/signin/start", opt={"rate_group": "login"})
    async def start(
        self,
        request: Request[Any, Any, Any],
        broker: NamedDependency[LoginBroker],
        territory_code: Code,
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
    ) -> Response[Any]:
        """Start the territory's OIDC login; the provider sends the browser back to /app/callback."""
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        settings = request.app.state.settings
        url = await broker.start(
            territory=territory_code,
            client_id=WEB_CLIENT,
            redirect_uri=_redirect_uri(request),
            app_state=state,
            code_challenge=create_s256_code_challenge(verifier),
        )
        await request.app.state.redis.set(
            _login_key(request, state),
            json.dumps({"verifier": verifier, "next": back_to(next_path)}),
            ex=settings.auth.login_ttl,
        )
        cookie = Cookie(
            key=LOGIN_COOKIE,
            value=state,
            path="/app",
            max_age=settings.auth.login_ttl,
            httponly=True,
            secure=settings.http.public_url.startswith("https://"),
            samesite="lax",
        )
        # The picker chooses this territory next time (a territory code: nothing personal).
        remembered = Cookie(key=TERRITORY_COOKIE, value=territory_code, path="/app", max_age=YEAR, samesite="lax")
        return Redirect(url, status_code=303, cookies=[cookie, remembered])

    @get("/app/callback", opt={"rate_group": "token"})
    async def callback(
        self,
        request: Request[Any, Any, Any],
        broker: NamedDependency[LoginBroker],
        registry_tx: NamedDependency[Any],
        login_state: Annotated[str, QueryParameter(name="state", max_length=200)],
        code: Annotated[str | None, QueryParameter(max_length=500)] = None,
        error: Annotated[str | None, QueryParameter(max_length=100)] = None,
        error_description: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> Response[Any]:
        bound = request.cookies.get(LOGIN_COOKIE)
        if not bound or not secrets.compare_digest(bound.encode(), login_state.encode()):
            raise LoginFailed("this sign-in was not started in this browser (or it took too long); start again")
        raw = await request.app.state.redis.getdel(_login_key(request, login_state))
        if raw is None:
            raise LoginFailed("this sign-in expired or was already used; start again")
        if error or not code:
            raise LoginFailed(error_description or "the sign-in was cancelled")
        started = json.loads(raw)
        state = request.app.state
        user_id = await broker.redeem_app_code(
            code=code, client_id=WEB_CLIENT, redirect_uri=_redirect_uri(request), verifier=started["verifier"]
        )
        pair = await issue_tokens(registry_tx, state.settings, state.node_keys, user_id, WEB_CLIENT)
        identity = await identity_for(registry_tx, user_id)
        sessions = sessions_of(state)
        # The profile's language, so the app speaks it at once (a language picked in this
        # browser, the oh_lang cookie, still comes first).
        sid, _ = await sessions.create(pair, identity, await broker.language_of(identity))
        done = Cookie(key=LOGIN_COOKIE, value="", path="/app", max_age=0, httponly=True, samesite="lax")
        return Redirect(back_to(started["next"]), status_code=303, cookies=[sessions.cookie(sid), done])

    @post("/app/signout", status_code=303, opt={"rate_group": "refresh"})
    async def signout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the session and revoke its refresh token (CSRF-checked like every post)."""
        sid = request.scope.get("oh_sid")  # type: ignore[call-overload]
        state = request.app.state
        sessions = sessions_of(state)
        if isinstance(sid, str):
            await sessions.sign_out(sid, state)
        response = redirect(request, "/app/signin?signed_out=1")
        response.cookies.append(sessions.cleared())
        return response
