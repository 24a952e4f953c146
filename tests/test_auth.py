"""Players log in through their territory's OpenID Connect provider and get node tokens.

Real flows over HTTP: the node's broker (/api/auth/*) as relying party of the node's
built-in provider (/oidc), a second node's provider for a second territory, refresh
rotation, role checks, rate limits.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from core.auth import LEEWAY
from core.keys import KeyRing
from core.routing import Router
from services.auth.service import LoginFailed, verify_id_token
from tests.conftest import ADMIN_TOKEN, Env, Node, rows, start_node

WEB = ("oneheart-web", "http://127.0.0.1:9/web/callback")
MOBILE = ("oneheart-mobile", "org.oneheart.app:/callback")
PASSWORD = "correct horse battery"


@dataclass
class Login:
    tokens: dict[str, object]
    location: str


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def provider_for(env: Env, node: Node, territory: str, issuer_node: Node) -> None:
    """Register the broker of ``node`` at ``issuer_node``'s provider and point ``territory`` there."""
    client = f"node-{uuid.uuid4().hex[:6]}"
    out = env.cli(
        "idp-client", "add", client, "--name", "OneHeart node", "--redirect-uri", f"{node.url}/api/auth/callback"
    ).stdout
    secret = re.search(r"client_secret: (\S+)", out).group(1)  # type: ignore[union-attr]
    env.cli(
        "auth",
        "set-provider",
        territory,
        "--issuer",
        f"{issuer_node.url}/oidc",
        "--client-id",
        client,
        "--client-secret-stdin",
        "--scope",
        "openid",
        "--scope",
        "profile",
        stdin=secret + "\n",
    )


@pytest.fixture(scope="module")
def accounts(env: Env, node: Node) -> dict[str, str]:
    provider_for(env, node, "dk", node)
    # The player app's redirect URI stays registered too (tests/webfixtures.py).
    env.cli(
        "auth",
        "add-app",
        WEB[0],
        "--name",
        "Web",
        "--redirect-uri",
        WEB[1],
        "--redirect-uri",
        f"{node.url}/app/callback",
    )
    env.cli("auth", "add-app", MOBILE[0], "--name", "Mobile", "--redirect-uri", MOBILE[1])
    names = {"alice": f"alice{uuid.uuid4().hex[:6]}", "bob": f"bob{uuid.uuid4().hex[:6]}"}
    for name in names.values():
        env.cli("user", "add", name, "--display-name", name.title(), "--password-stdin", stdin=PASSWORD + "\n")
    return names


async def start(c: httpx.AsyncClient, territory: str, client: tuple[str, str], verifier: str, state: str) -> str:
    r = await c.get(
        "/api/auth/login",
        params={
            "territory": territory,
            "client_id": client[0],
            "redirect_uri": client[1],
            "state": state,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code == 302, r.text
    return r.headers["location"]


async def through_provider(c: httpx.AsyncClient, authorize_url: str, username: str, password: str) -> httpx.Response:
    page = await c.get(authorize_url)
    assert page.status_code == 200, page.text
    form = dict(re.findall(r'name="(login_id|csrf_token)" value="([^"]+)"', page.text))
    provider = authorize_url.split("/oidc/")[0]
    return await c.post(f"{provider}/oidc/login", data={**form, "username": username, "password": password})


async def login(
    node: Node,
    username: str,
    *,
    territory: str = "dk",
    client: tuple[str, str] = WEB,
    verifier: str | None = None,
    sent_verifier: str | None = None,
    source: str | None = None,
) -> Login:
    """The whole flow, as an app and its player's browser do it (from ``source``, a loopback
    address, when given)."""
    verifier = verifier or secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(12)
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    async with httpx.AsyncClient(base_url=node.url, timeout=60, transport=transport) as c:
        r = await through_provider(c, await start(c, territory, client, verifier, state), username, PASSWORD)
        assert r.status_code == 302, r.text
        r = await c.get(r.headers["location"])  # the node's callback
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        back = query(location)
        assert location.startswith(client[1] + "?") and back["state"] == state, location
        assert "code" in back, location
        r = await c.post(
            "/api/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"],
                "client_id": client[0],
                "redirect_uri": client[1],
                "code_verifier": verifier if sent_verifier is None else sent_verifier,
            },
        )
    return Login(r.json() if r.status_code == 200 else {"status": r.status_code, **r.json()}, location)


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_web_login_end_to_end(node: Node, accounts: dict[str, str]) -> None:
    result = await login(node, accounts["alice"])
    tokens = result.tokens
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900, tokens
    access = str(tokens["access_token"])
    c = claims(access)
    assert c["home"] == "dk" and c["roles"] == {"dk": ["player"]} and c["aud"] == "oneheart" and c["iss"] == node.url
    async with node.client(anonymous=True, headers={"Authorization": f"Bearer {access}"}) as api:
        me = await api.get("/api/players/me")  # no X-Territory: the token's home territory
        assert me.status_code == 200, me.text
        assert me.json()["display_name"] == accounts["alice"].title() and me.json()["territory"] == "dk"
        jwks = (await api.get("/.well-known/jwks.json")).json()
    assert any(k["kid"] and k["alg"] == "ES256" and "d" not in k for k in jwks["keys"])


async def test_mobile_public_client_with_custom_scheme(node: Node, accounts: dict[str, str]) -> None:
    result = await login(node, accounts["bob"], client=MOBILE)
    assert result.location.startswith("org.oneheart.app:/callback?") and "code" in query(result.location)
    assert "access_token" in result.tokens and "refresh_token" in result.tokens


@pytest.mark.parametrize("sent", ["", "wrong-verifier-" + "x" * 40])
async def test_missing_or_wrong_pkce_verifier_is_refused(node: Node, accounts: dict[str, str], sent: str) -> None:
    result = await login(node, accounts["alice"], sent_verifier=sent)
    assert result.tokens["status"] == 400 and result.tokens["error"] == "login_failed"


async def test_code_replay_wrong_state_and_unregistered_apps(node: Node, accounts: dict[str, str]) -> None:
    verifier = secrets.token_urlsafe(48)
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as c:
        r = await through_provider(c, await start(c, "dk", WEB, verifier, "state-1234"), accounts["alice"], PASSWORD)
        callback = r.headers["location"]
        tampered = callback.replace("state=", "state=x")
        assert (await c.get(tampered)).status_code == 400  # unknown state
        r = await c.get(callback)
        code = query(r.headers["location"])["code"]
        form = {"grant_type": "authorization_code", "code": code, "client_id": WEB[0], "redirect_uri": WEB[1]}
        first = await c.post("/api/auth/token", data={**form, "code_verifier": verifier})
        assert first.status_code == 200
        again = await c.post("/api/auth/token", data={**form, "code_verifier": verifier})
        assert again.status_code == 400 and "already used" in again.json()["detail"]
        assert (await c.get(callback)).status_code == 400  # the provider's callback cannot be replayed either
        params = {"territory": "dk", "state": "abcdefgh", "code_challenge": "a" * 43, "client_id": WEB[0]}
        bad_uri = await c.get("/api/auth/login", params={**params, "redirect_uri": "http://127.0.0.1:9/evil"})
        assert bad_uri.status_code == 400 and "not registered" in bad_uri.json()["detail"]
        unknown = await c.get("/api/auth/login", params={**params, "client_id": "nope", "redirect_uri": WEB[1]})
        assert unknown.status_code == 400
        no_idp = await c.get("/api/auth/login", params={**params, "territory": "ca", "redirect_uri": WEB[1]})
        assert no_idp.status_code == 404 and "identity provider" in no_idp.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(node: Node, accounts: dict[str, str]) -> None:
    tokens = (await login(node, accounts["bob"])).tokens
    async with node.client(anonymous=True) as c:
        first = tokens["refresh_token"]
        r = await c.post("/api/auth/refresh", json={"refresh_token": first})
        assert r.status_code == 200
        second = r.json()["refresh_token"]
        assert second != first and claims(r.json()["access_token"])["home"] == "dk"
        reused = await c.post("/api/auth/refresh", json={"refresh_token": first})
        assert reused.status_code == 401 and reused.json()["error"] == "refresh_token_reused"
        # The whole family is gone: the legitimate latest token no longer works either.
        assert (await c.post("/api/auth/refresh", json={"refresh_token": second})).status_code == 401
        other = (await login(node, accounts["bob"])).tokens["refresh_token"]
        assert (await c.post("/api/auth/logout", json={"refresh_token": other})).status_code == 204
        assert (await c.post("/api/auth/refresh", json={"refresh_token": other})).status_code == 401


async def test_access_token_checks(env: Env, node: Node, accounts: dict[str, str], tmp_path: Path) -> None:
    player = str((await login(node, accounts["alice"])).tokens["access_token"])
    foreign = KeyRing(tmp_path / "foreign", "ES256", rotate_after=1e9, grace=1e9).ensure_current()
    now = int(time.time())
    base = claims(player)
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(base).encode()).decode().rstrip("=")
    cases = {
        "expired": node.token(exp=now - 120, iat=now - 1000),
        "other key": foreign.sign(base),
        "alg none": f"{none_header}.{body}.",
        "other issuer": node.token(iss="https://evil.example"),
        "other audience": node.token(aud="someone-else"),
        "garbage": "a.b.c",
    }
    async with node.client(anonymous=True) as c:
        for name, token in cases.items():
            r = await c.get("/api/players/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, r.text)
        who = {"Authorization": f"Bearer {player}"}
        assert (await c.get("/api/zones", headers=who)).status_code == 200
        # A dk player may not read or write sami's data, nor create zones, nor use the registry.
        r = await c.get("/api/zones", headers={**who, "X-Territory": "sami"})
        assert r.status_code == 403 and "no role in 'sami'" in r.json()["detail"]
        zone = {"name": "x", "lat": 1, "lng": 1, "radius_m": 5}
        r = await c.post("/api/zones", headers=who, json=zone)
        assert r.status_code == 403 and "operator" in r.json()["detail"]
        assert (await c.get("/api/registry/territories", headers=who)).status_code == 403
        assert (await c.get("/api/zones")).status_code == 401
    assert rows(env.dsn_b, "SELECT count(*) FROM territory_sami.zones WHERE name = 'x'") == [(0,)]


async def test_tokens_from_the_future_are_refused(node: Node, accounts: dict[str, str]) -> None:
    """``iat`` and ``nbf`` are checked like ``exp``, with the same small leeway for clock skew."""
    sub = uuid.UUID(str(claims(str((await login(node, accounts["alice"])).tokens["access_token"]))["sub"]))
    now = int(time.time())
    player = {"home": "dk", "roles": {"dk": ["player"]}, "user_id": sub}
    refused = {
        "issued in the future": node.token(**player, iat=now + 600),
        "not valid yet": node.token(**player, nbf=now + 600),
        "nbf not a number": node.token(**player, nbf="soon"),
        "no iat": node.token(**player, iat=None),
    }
    accepted = {
        "within the leeway": node.token(**player, iat=now + LEEWAY // 2, nbf=now + LEEWAY // 2),
        "valid from now on": node.token(**player, nbf=now - 5),
    }
    async with node.client(anonymous=True) as c:
        for name, token in refused.items():
            r = await c.get("/api/players/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, r.text)
        for name, token in accepted.items():
            r = await c.get("/api/players/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, (name, r.text)


async def test_a_class_of_40_signs_in_at_once_from_one_address(
    env: Env, node: Node, router: Router, accounts: dict[str, str]
) -> None:
    """A school: 40 pupils behind one address sign in together, with the default limits (the
    suite's nodes run with them), through the full flow of the built-in provider."""
    from services.idp import service as idp
    from services.idp.passwords import hash_password

    assert not {k for k in env.environ() if k.startswith("OH_RATE_LIMIT")}, "the node must run with the defaults"
    tag = uuid.uuid4().hex[:6]
    pupils = [f"pupil{i:02d}{tag}" for i in range(40)]
    digest = hash_password(PASSWORD)
    await asyncio.gather(*(idp.add_account(router, name, digest, name.title(), None) for name in pupils))
    school = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    # All within one minute, a few browsers at a time (a test machine's CPU and the registry's
    # small pool, not the limits, would otherwise decide how many 40 simultaneous logins take).
    gate = asyncio.Semaphore(8)

    async def pupil_login(name: str) -> Login:
        async with gate:
            return await login(node, name, source=school)

    results = await asyncio.gather(*(pupil_login(name) for name in pupils))
    failed = [(name, r.tokens) for name, r in zip(pupils, results, strict=True) if "access_token" not in r.tokens]
    assert not failed, failed
    async with node.client(anonymous=True) as c:
        for result in results[:: len(results) // 5]:
            me = await c.get("/api/players/me", headers={"Authorization": f"Bearer {result.tokens['access_token']}"})
            assert me.status_code == 200, me.text


async def test_two_territories_two_providers_one_person(
    env: Env, node: Node, accounts: dict[str, str], tmp_path: Path
) -> None:
    second = start_node(env, tmp_path / "node2.log")  # another built-in provider, another issuer
    try:
        provider_for(env, node, "sami", second)
        in_dk = await login(node, accounts["alice"], territory="dk")
        in_sami = await login(node, accounts["alice"], territory="sami")
        dk, sami = claims(str(in_dk.tokens["access_token"])), claims(str(in_sami.tokens["access_token"]))
        assert dk["home"] == "dk" and sami["home"] == "sami" and dk["sub"] != sami["sub"]
        people = rows(
            env.dsn_a, "SELECT issuer, home_territory FROM global.users WHERE id = ANY(%s)", [dk["sub"], sami["sub"]]
        )
        assert sorted(people) == sorted([(f"{node.url}/oidc", "dk"), (f"{second.url}/oidc", "sami")])
        assert rows(env.dsn_b, "SELECT count(*) FROM territory_sami.players WHERE id = %s", sami["sub"]) == [(1,)]
    finally:
        second.proc.kill()


async def at_window_start(seconds: int) -> None:
    """Wait until a fixed rate-limit window has just begun, so that a burst falls in one window."""
    await asyncio.sleep(seconds - time.time() % seconds + 0.05)


async def test_rate_limits_answer_429_and_recover(env: Env, router: Router, tmp_path: Path) -> None:
    tight = start_node(env, tmp_path / "tight.log", OH_RATE_LIMIT_LOGIN="3/3", OH_RATE_LIMIT_API="4/3")
    try:
        async with tight.client(anonymous=True) as c:
            params = {
                "territory": "dk",
                "client_id": "x",
                "redirect_uri": "y",
                "state": "abcdefgh",
                "code_challenge": "a" * 43,
            }
            await c.get("/health")  # first connection made before the timed burst
            await at_window_start(3)
            statuses = [(await c.get("/api/auth/login", params=params)).status_code for _ in range(4)]
            assert statuses[:3] == [400, 400, 400] and statuses[3] == 429
            limited = await c.get("/api/auth/login", params=params)
            assert 1 <= int(limited.headers["retry-after"]) <= 4 and limited.json()["error"] == "rate_limited"
            who = tight.auth()
            await at_window_start(3)
            api = [(await c.get("/api/zones", headers=who)).status_code for _ in range(5)]
            assert api[:4] == [200] * 4 and api[4] == 429
            await asyncio.sleep(3.5)
            assert (await c.get("/api/auth/login", params=params)).status_code == 400
            assert (await c.get("/api/zones", headers=who)).status_code == 200
            # Another user is counted separately.
            assert (await c.get("/api/zones", headers=tight.auth())).status_code == 200
    finally:
        tight.proc.kill()


async def test_bootstrap_admin_token_retires_once_a_global_admin_exists(
    env: Env, node: Node, accounts: dict[str, str], tmp_path: Path
) -> None:
    fresh = start_node(env, tmp_path / "fresh.log")
    admin_header = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    person = claims(str((await login(node, accounts["bob"])).tokens["access_token"]))["sub"]
    try:
        async with fresh.client(anonymous=True) as c:
            assert (await c.get("/api/registry/servers", headers=admin_header)).status_code == 200
            env.cli("auth", "grant", str(person), "global_admin")
            retired = await c.get("/api/registry/servers", headers=admin_header)
            assert retired.status_code == 401 and "retired" in retired.json()["detail"]
        # The new global admin signs in and uses the registry with their own token.
        admin_token = str((await login(node, accounts["bob"])).tokens["access_token"])
        assert claims(admin_token)["roles"]["*"] == ["global_admin"]
        async with node.client(anonymous=True, headers={"Authorization": f"Bearer {admin_token}"}) as c:
            assert (await c.get("/api/registry/servers")).status_code == 200
    finally:
        env.cli("auth", "revoke", str(person), "global_admin")
        fresh.proc.kill()


def test_id_token_verification_rejects_every_flaw(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "idp", "RS256", rotate_after=1e9, grace=1e9).ensure_current()
    other = KeyRing(tmp_path / "other", "RS256", rotate_after=1e9, grace=1e9).ensure_current()
    now = int(time.time())
    good = {"iss": "https://idp.example", "aud": "node", "sub": "u1", "exp": now + 300, "iat": now, "nonce": "n1"}
    expect = {"issuer": "https://idp.example", "client_id": "node", "nonce": "n1"}
    assert verify_id_token(ring.sign(good), ring.jwks(), **expect)["sub"] == "u1"
    flaws = {
        "wrong issuer": {**good, "iss": "https://evil.example"},
        "wrong audience": {**good, "aud": "someone"},
        "wrong authorized party": {**good, "aud": ["node", "x"], "azp": "x"},
        "expired": {**good, "exp": now - 3600},
        "issued in the future": {**good, "iat": now + 3600},
        "wrong nonce": {**good, "nonce": "n2"},
        "no subject": {**good, "sub": ""},
    }
    for reason, doc in flaws.items():
        with pytest.raises(LoginFailed, match=reason):
            verify_id_token(ring.sign(doc), ring.jwks(), **expect)
    with pytest.raises(LoginFailed, match="invalid"):
        verify_id_token(other.sign(good), ring.jwks(), **expect)
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    payload = base64.urlsafe_b64encode(json.dumps(good).encode()).decode().rstrip("=")
    with pytest.raises(LoginFailed):
        verify_id_token(f"{header}.{payload}.", ring.jwks(), **expect)
