"""The player app's browser sessions, attacked the way a page, a script or another site would,
in Chromium and with plain httpx against the real node: the cookie, tokens kept off the
browser, CSRF and Origin checks, a session that ends (deleted, idle), sign-out revoking the
login, the Content-Security-Policy, and the access token refreshed server-side, once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, expect

from core.routing import Router
from services.auth.sessions import Sessions, WebSession
from territories.registry import Registry
from tests.browser import new_page
from tests.conftest import Env, rows, start_node
from tests.test_auth import PASSWORD, provider_for
from tests.webfixtures import WEB_CLIENT, Web, sign_in, web  # noqa: F401  (the web fixture)

COOKIE = "oh_session"
PAGES = ["/app", "/app/leaderboards", "/app/notifications", "/app/profile"]


@dataclass
class Browsing:
    """A signed-in browser page and what it holds."""

    page: Page
    username: str
    user_id: uuid.UUID
    sid: str
    visited: list[str]


def user_id(env: Env, username: str) -> uuid.UUID:
    found = rows(
        env.dsn_a,
        "SELECT u.id FROM global.users u JOIN global.idp_accounts a ON u.subject = a.id::text WHERE a.username = %s",
        username,
    )
    return uuid.UUID(str(found[0][0]))


async def browse(browser: Browser, web: Web, territory: str = "dk", size: str = "desktop") -> Browsing:  # noqa: F811
    page = await new_page(browser, size)  # type: ignore[arg-type]
    visited: list[str] = []
    page.on("request", lambda r: visited.append(r.url))
    page.on("framenavigated", lambda f: visited.append(f.url))
    username = web.player("sess")
    await sign_in(page, web, username, territory=territory)
    sid = next(c["value"] for c in await page.context.cookies() if c["name"] == COOKIE)
    return Browsing(page, username, user_id(web.env, username), sid, visited)


@pytest_asyncio.fixture(loop_scope="session")
async def redis(env: Env) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(env.settings.redis.url)
    yield client
    await client.aclose()


async def stored(redis: aioredis.Redis, env: Env, sid: str) -> WebSession | None:
    return await Sessions(redis, env.settings).load(sid)


def display_name(env: Env, code: str, player: uuid.UUID) -> str:
    return str(rows(env.dsn_a, f"SELECT display_name FROM territory_{code}.players WHERE id = %s", player)[0][0])


def refresh_rows(env: Env, player: uuid.UUID) -> list[tuple[Any, ...]]:
    """The web app's refresh tokens of a person: (rotated, revoked), oldest first."""
    return rows(
        env.dsn_a,
        "SELECT rotated_at IS NOT NULL, revoked_at IS NOT NULL FROM global.refresh_tokens "
        "WHERE user_id = %s AND client_id = %s ORDER BY created_at",
        player,
        WEB_CLIENT,
    )


def jar(sid: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={sid}"}


async def csrf_of(page: Page) -> str:
    return str(await page.locator('meta[name="csrf-token"]').get_attribute("content"))


# --- the cookie and the tokens ------------------------------------------------------------
async def test_sign_in_sets_an_httponly_lax_cookie_and_no_token_reaches_the_browser(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    redis: aioredis.Redis,
) -> None:
    b = await browse(browser, web)
    try:
        cookie = next(c for c in await b.page.context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        assert cookie["secure"] is False  # http on loopback; https makes it __Host- and Secure
        assert not any(c["name"] == "oh_login" and c["value"] for c in await b.page.context.cookies())
        session = await stored(redis, env, b.sid)
        assert session is not None and session.user_id == str(b.user_id)
        secrets = {session.access, session.refresh, session.access.split(".")[2]}
        for path in PAGES:
            await b.page.goto(f"{web.url}{path}")
            html = await b.page.content()
            held = await b.page.evaluate(
                """() => JSON.stringify({local: {...localStorage}, session: {...sessionStorage},
                                         cookie: document.cookie, url: location.href})"""
            )
            for secret in secrets:
                assert secret not in html and secret not in held, path
            assert "eyJ" not in html  # no JWT of any kind in a page
            assert COOKIE not in held  # the session cookie is not readable from scripts
        assert b.visited and all(s not in url for url in b.visited for s in secrets)
        assert not any("access_token" in url or "refresh_token" in url for url in b.visited)
    finally:
        await b.page.context.close()


# --- CSRF and Origin ------------------------------------------------------------------------
async def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
) -> None:
    b = await browse(browser, web)
    page = b.page
    try:
        await page.goto(f"{web.url}/app/profile")
        name = display_name(env, "dk", b.user_id)
        # A script on the page posting without the header (the cookie goes along: same origin).
        answer = await page.evaluate(
            """async () => { const r = await fetch("/app/profile", {method: "POST",
                 headers: {"Content-Type": "application/x-www-form-urlencoded"},
                 body: new URLSearchParams({display_name: "Evil script", on_leaderboards: "0"})});
               return [r.status, await r.text()]; }"""
        )
        assert answer[0] == 403 and "security token" in answer[1] and "Nothing was changed." in answer[1]
        # The same with a made-up header.
        status = await page.evaluate(
            """async () => (await fetch("/app/profile", {method: "POST", headers: {"X-CSRF-Token": "guess",
                 "Content-Type": "application/x-www-form-urlencoded"}, body: "display_name=Guessed"})).status"""
        )
        assert status == 403
        # The real form with a wrong token: a clear page, and nothing changes.
        await page.locator('#profile-form input[name="csrf"]').evaluate("(el) => { el.value = 'wrong-token'; }")
        await page.get_by_label("Display name").fill("Mallory")
        async with page.expect_response(f"{web.url}/app/profile") as refused:
            await page.get_by_role("button", name="Save").click()
        assert (await refused.value).status == 403
        await expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        await expect(page.locator("main")).to_contain_text("missing its security token")
        await expect(page.locator("main")).to_contain_text("Nothing was changed.")
        assert display_name(env, "dk", b.user_id) == name
        assert rows(env.dsn_a, "SELECT on_leaderboards FROM territory_dk.players WHERE id = %s", b.user_id) == [(True,)]
        # With the session's token the same post goes through (what the refusals were about).
        await page.goto(f"{web.url}/app/profile")
        ok = await page.evaluate(
            """async (csrf) => (await fetch("/app/profile", {method: "POST", headers: {"X-CSRF-Token": csrf,
                 "Content-Type": "application/x-www-form-urlencoded"}, body: "display_name=Honest",
                 redirect: "manual"})).type""",
            await csrf_of(page),
        )
        assert ok == "opaqueredirect" and display_name(env, "dk", b.user_id) == "Honest"
    finally:
        await page.context.close()


async def test_a_post_from_another_origin_is_refused(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
) -> None:
    b = await browse(browser, web)
    try:
        await b.page.goto(f"{web.url}/app/profile")
        csrf = await csrf_of(b.page)
        name = display_name(env, "dk", b.user_id)
        form = {"csrf": csrf, "display_name": "From elsewhere"}
        async with httpx.AsyncClient(base_url=web.url, headers=jar(b.sid), timeout=30) as c:
            for headers in (
                {"Origin": "http://evil.example"},
                {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
                {"Origin": "null"},
                {"Sec-Fetch-Site": "cross-site"},
                {"Sec-Fetch-Site": "same-site"},
            ):
                r = await c.post("/app/profile", data=form, headers=headers)
                assert r.status_code == 403, (headers, r.text)
                assert "another site" in r.text and "Nothing was changed." in r.text
                assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert display_name(env, "dk", b.user_id) == name
            # From the node itself, with the token: accepted.
            r = await c.post("/app/profile", data=form, headers={"Origin": web.url, "Sec-Fetch-Site": "same-origin"})
            assert r.status_code == 303 and r.headers["location"] == "/app/profile?saved=1"
        assert display_name(env, "dk", b.user_id) == "From elsewhere"
    finally:
        await b.page.context.close()


# --- a session that ends -------------------------------------------------------------------
async def test_a_deleted_session_sends_the_player_to_sign_in_and_changes_nothing(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    redis: aioredis.Redis,
) -> None:
    b = await browse(browser, web, size="phone")
    page = b.page
    try:
        await page.goto(f"{web.url}/app/profile")
        name = display_name(env, "dk", b.user_id)
        await redis.delete(Sessions(redis, env.settings)._key(b.sid))
        # The open form is sent after the session is gone: refused, and it says so.
        await page.get_by_label("Display name").fill("Too late")
        async with page.expect_response(f"{web.url}/app/profile") as refused:
            await page.get_by_role("button", name="Save").click()
        assert (await refused.value).status == 401
        await expect(page.get_by_role("heading", level=1)).to_have_text("Please sign in again")
        await expect(page.locator("main")).to_contain_text("your session has ended")
        await expect(page.locator("main")).to_contain_text("Nothing was changed.")
        assert display_name(env, "dk", b.user_id) == name
        # Any page now leads to sign-in, with the message, and back to where the player was.
        await page.goto(f"{web.url}/app/leaderboards")
        await expect(page).to_have_url(f"{web.url}/app/signin?next=/app/leaderboards&ended=1")
        await expect(page.locator("main")).to_contain_text("Your session ended. Sign in again to go on.")
        # Other tests add territories that sign in elsewhere: choose this player's own.
        radio = page.locator('input[name="territory"][value="dk"]')
        if await radio.count():
            await radio.check()
        await page.get_by_role("button", name="Sign in").click()
        # The provider may still know this browser (its own sign-in session outlives the app's):
        # then it sends the player straight back, else it asks for the password first.
        await page.wait_for_url(lambda url: "/oidc/" in url or url.endswith("/app/leaderboards"))
        if "/oidc/" in page.url:
            await page.get_by_label("Username").fill(b.username)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{web.url}/app/leaderboards")
    finally:
        await page.context.close()


@dataclass
class OwnNode:
    web: Web
    territory: str


async def own_node(env: Env, router: Router, tmp_path: Path, **extra: str) -> OwnNode:
    """A second node with its own settings: the player app registered for it (its callback
    added to the web app's redirect URIs) and a territory signing in at its own provider."""
    node = start_node(env, tmp_path / "node.log", **extra)
    uris = rows(env.dsn_a, "SELECT redirect_uris FROM global.app_clients WHERE client_id = %s", WEB_CLIENT)[0][0]
    env.cli(
        "auth",
        "add-app",
        WEB_CLIENT,
        "--name",
        "OneHeart web",
        *(a for u in [*uris, f"{node.url}/app/callback"] for a in ("--redirect-uri", u)),  # type: ignore[union-attr]
    )
    code = f"ws_{uuid.uuid4().hex[:8]}"
    await Registry(router, "test").create_territory(code, f"Session {code}", "a")
    provider_for(env, node, code, node)
    return OwnNode(Web(env, node), code)


async def test_an_idle_session_ends(
    browser: Browser,
    web: Web,  # noqa: F811  (registers the web app, which own_node extends)
    env: Env,
    router: Router,
    tmp_path: Path,
) -> None:
    own = await own_node(env, router, tmp_path, OH_WEB_SESSION_IDLE="4")
    b = await browse(browser, own.web, own.territory)
    page = b.page
    try:
        await page.goto(f"{own.web.url}/app/profile")
        name = display_name(env, own.territory, b.user_id)
        csrf = await csrf_of(page)
        await page.get_by_label("Display name").fill("After a nap")
        await asyncio.sleep(6)
        async with page.expect_response(f"{own.web.url}/app/profile") as refused:
            await page.get_by_role("button", name="Save").click()
        assert (await refused.value).status == 401
        await expect(page.locator("main")).to_contain_text("your session has ended")
        assert display_name(env, own.territory, b.user_id) == name
        await page.goto(f"{own.web.url}/app")
        await expect(page).to_have_url(f"{own.web.url}/app/signin?next=/app&ended=1")
        await expect(page.locator("main")).to_contain_text("Your session ended.")
        async with httpx.AsyncClient(base_url=own.web.url, headers=jar(b.sid), timeout=30) as c:
            r = await c.post("/app/profile", data={"csrf": csrf, "display_name": "Replayed"})
            assert r.status_code == 401
        assert display_name(env, own.territory, b.user_id) == name
    finally:
        await page.context.close()
        own.web.node.proc.kill(signal.SIGTERM)


# --- sign-out --------------------------------------------------------------------------------
async def test_sign_out_revokes_the_refresh_token_and_the_old_cookie_is_dead(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    redis: aioredis.Redis,
) -> None:
    b = await browse(browser, web)
    page = b.page
    try:
        await page.goto(f"{web.url}/app/profile")
        csrf = await csrf_of(page)
        session = await stored(redis, env, b.sid)
        assert session is not None
        assert refresh_rows(env, b.user_id) == [(False, False)]
        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(f"{web.url}/app/signin?signed_out=1")
        await expect(page.locator("main")).to_contain_text("You are signed out.")
        assert not any(c["name"] == COOKIE and c["value"] for c in await page.context.cookies())
        assert refresh_rows(env, b.user_id) == [(False, True)]  # revoked
        assert await stored(redis, env, b.sid) is None
        async with httpx.AsyncClient(base_url=web.url, headers=jar(b.sid), timeout=30) as c:
            r = await c.get("/app")
            assert r.status_code == 303 and r.headers["location"] == "/app/signin?next=/app&ended=1"
            r = await c.post("/app/profile", data={"csrf": csrf, "display_name": "Ghost"})
            assert r.status_code == 401
            # The refresh token the session held is dead for the API too.
            r = await c.post("/api/auth/refresh", json={"refresh_token": session.refresh}, headers={"Cookie": ""})
            assert r.status_code == 401
        assert display_name(env, "dk", b.user_id) != "Ghost"
    finally:
        await page.context.close()


# --- headers ---------------------------------------------------------------------------------
async def test_every_page_has_a_strict_content_security_policy(
    browser: Browser,
    web: Web,  # noqa: F811
) -> None:
    b = await browse(browser, web)
    try:
        async with httpx.AsyncClient(base_url=web.url, headers=jar(b.sid), timeout=30) as c:
            answers = [await c.get(p) for p in [*PAGES, "/app/notifications/unread", "/app/no-such-page"]]
        async with httpx.AsyncClient(base_url=web.url, timeout=30) as anonymous:
            answers.append(await anonymous.get("/app/signin"))
        assert [r.status_code for r in answers] == [200] * 5 + [404, 200]
        for r in answers:
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
    finally:
        await b.page.context.close()


# --- the access token's refresh ----------------------------------------------------------------
async def test_the_access_token_is_refreshed_server_side_once(
    browser: Browser,
    web: Web,  # noqa: F811  (registers the web app, which own_node extends)
    env: Env,
    router: Router,
    tmp_path: Path,
    redis: aioredis.Redis,
) -> None:
    own = await own_node(env, router, tmp_path, OH_ACCESS_TOKEN_TTL="40")
    b = await browse(browser, own.web, own.territory)
    page = b.page
    try:
        first = await stored(redis, env, b.sid)
        assert first is not None and first.access_expires - time.time() <= 40
        await page.goto(f"{own.web.url}/app/notifications")
        assert refresh_rows(env, b.user_id) == [(False, False)]  # still young: no refresh
        await asyncio.sleep(max(0.0, first.access_expires - time.time()) + 2)  # past its expiry
        # Five requests at once from the page after it expired: all work, one refresh.
        statuses = await page.evaluate(
            """async () => Promise.all([1, 2, 3, 4, 5].map(async () =>
                 (await fetch("/app/notifications/unread", {headers: {"HX-Request": "true"}})).status))"""
        )
        assert statuses == [200] * 5
        await page.goto(f"{own.web.url}/app/profile")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
        assert refresh_rows(env, b.user_id) == [(True, False), (False, False)]  # rotated once
        second = await stored(redis, env, b.sid)
        assert second is not None and second.access != first.access and second.refresh != first.refresh
        assert second.access_expires > first.access_expires
        for path in PAGES:
            await page.goto(f"{own.web.url}{path}")
        assert refresh_rows(env, b.user_id) == [(True, False), (False, False)]
    finally:
        await page.context.close()
        own.web.node.proc.kill(signal.SIGTERM)
