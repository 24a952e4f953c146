"""The built-in OIDC provider, end to end: CLI-made accounts and clients, the browser login
(each test from its own loopback source address, so the per-IP login limit stays per test),
the token and userinfo endpoints, over real HTTP against real nodes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import secrets
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.errors import InvalidInput
from core.keys import verify_with_jwks
from core.urls import check_redirect_uri
from tests.conftest import Env, Node, rows, start_node

PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "bob's long password"
WEB_REDIRECT = "https://rp.example/callback"
WEB_LOOPBACK = "http://127.0.0.1:8008/_synapse/client/oidc/callback"
OTHER_REDIRECT = "https://other.example/cb"
NATIVE_REDIRECT = "com.example.app:/callback"
BAD_CREDENTIALS = "The username or password is not right."


def oneheart_many(env: Env, *calls: tuple[list[str], str]) -> list[subprocess.CompletedProcess[str]]:
    """Independent CLI calls ``(args, stdin)``, run side by side."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda call: env.cli(*call[0], check=False, stdin=call[1]), calls))


@dataclass
class Idp:
    web_secret: str
    other_secret: str
    alice_id: str


@pytest.fixture(scope="module")
def idp(env: Env, node: Node) -> Idp:
    web_flags = ["--redirect-uri", WEB_REDIRECT, "--redirect-uri", WEB_LOOPBACK]
    alice, bob, web, other, mobile = oneheart_many(
        env,
        (
            [
                "user",
                "add",
                "alice",
                "--display-name",
                "Alice Ávila",
                "--email",
                "alice@example.org",
                "--password-stdin",
            ],
            PASSWORD + "\n",
        ),
        (["user", "add", "bob", "--display-name", "Bob", "--password-stdin"], BOB_PASSWORD + "\n"),
        (["idp-client", "add", "web", "--name", "Web <App>", *web_flags], ""),
        (["idp-client", "add", "other", "--name", "Other", "--redirect-uri", OTHER_REDIRECT], ""),
        (["idp-client", "add", "mobile", "--name", "Mobile", "--redirect-uri", NATIVE_REDIRECT, "--public"], ""),
    )
    for out in (alice, bob, web, other, mobile):
        assert out.returncode == 0, out.stderr
    assert "client_secret" not in mobile.stdout
    found = [re.search(r"^client_secret: (\S+)$", out.stdout, re.M) for out in (web, other)]
    assert found[0] and found[1], (web.stdout, other.stdout)
    [(alice_id,)] = rows(env.dsn_a, "SELECT id::text FROM global.idp_accounts WHERE username = 'alice'")
    return Idp(found[0].group(1), found[1].group(1), str(alice_id))


@pytest.fixture(scope="module")
def tight(env: Env, idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node with 1-second codes and 3 failed passwords per account and IP per 3 seconds."""
    log: Path = tmp_path_factory.mktemp("tight") / "node.log"
    n = start_node(env, log, OH_AUTH_CODE_TTL="1", OH_RATE_LIMIT_PASSWORD="3/3")
    yield n
    n.proc.kill(signal.SIGTERM)


# --- helpers ------------------------------------------------------------------------------
def browser(node: Node) -> httpx.AsyncClient:
    """A browser-like client (keeps cookies, never follows redirects) from its own 127.x address."""
    ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.AsyncHTTPTransport(local_address=ip)
    return httpx.AsyncClient(base_url=node.url, transport=transport, follow_redirects=False, timeout=30)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_fields(html: str) -> dict[str, str]:
    found = dict(re.findall(r'name="(login_id|csrf_token)" value="([^"]*)"', html))
    assert set(found) == {"login_id", "csrf_token"}, html
    return found


def alert(html: str) -> str:
    match = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert match, html
    return match.group(1)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def auth_params(client_id: str, redirect_uri: str, **extra: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        **extra,
    }
    return {k: v for k, v in params.items() if v is not None}


async def open_login(b: httpx.AsyncClient, params: dict[str, str]) -> dict[str, str]:
    page = await b.get("/oidc/authorize", params=params)
    assert page.status_code == 200, page.text
    return form_fields(page.text)


async def submit(b: httpx.AsyncClient, fields: dict[str, str], username: str, password: str) -> httpx.Response:
    return await b.post("/oidc/login", data={**fields, "username": username, "password": password})


async def get_code(
    b: httpx.AsyncClient, params: dict[str, str], username: str = "alice", password: str = PASSWORD
) -> str:
    fields = await open_login(b, params)
    done = await submit(b, fields, username, password)
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith(params["redirect_uri"] + "?")
    back = query(location)
    assert back["state"] == params["state"] and back["iss"] == str(b.base_url).rstrip("/") + "/oidc"
    return back["code"]


async def redeem(b: httpx.AsyncClient, params: dict[str, str], code: str, **form: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": params["redirect_uri"], **form}
    return await b.post("/oidc/token", data={k: v for k, v in data.items() if v is not None})


def grant_error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["error"])


async def verified_id_token(b: httpx.AsyncClient, id_token: str) -> dict[str, Any]:
    jwks = (await b.get("/oidc/jwks")).json()
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    return verify_with_jwks(id_token, jwks, ["RS256"])


# --- discovery ----------------------------------------------------------------------------
async def test_discovery_document(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        doc = (await b.get("/oidc/.well-known/openid-configuration")).json()
        iss = f"{node.url}/oidc"
        assert doc["issuer"] == iss
        for key, path in (
            ("authorization_endpoint", "authorize"),
            ("token_endpoint", "token"),
            ("userinfo_endpoint", "userinfo"),
            ("jwks_uri", "jwks"),
        ):
            assert doc[key] == f"{iss}/{path}"
        assert doc["response_types_supported"] == ["code"]
        assert doc["grant_types_supported"] == ["authorization_code"]
        assert doc["subject_types_supported"] == ["public"]
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
        assert set(doc["scopes_supported"]) == {"openid", "profile", "email"}
        assert set(doc["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "none",
        }
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert {"sub", "iss", "aud", "nonce", "preferred_username", "name", "email"} <= set(doc["claims_supported"])
        jwks = (await b.get(doc["jwks_uri"].removeprefix(node.url))).json()
        assert jwks["keys"] and all(k["kty"] == "RSA" and k["alg"] == "RS256" and "d" not in k for k in jwks["keys"])


# --- full flows ---------------------------------------------------------------------------
async def test_confidential_client_flow(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        code = await get_code(b, params)
        response = await b.post(
            "/oidc/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT},
            auth=("web", idp.web_secret),  # client_secret_basic
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert body["scope"] == "openid profile email"
        claims = await verified_id_token(b, body["id_token"])
        assert claims["iss"] == f"{node.url}/oidc" and claims["aud"] == "web"
        assert claims["sub"] == idp.alice_id and claims["nonce"] == params["nonce"]
        assert claims["auth_time"] <= claims["iat"] and claims["exp"] - claims["iat"] == 900
        assert claims["preferred_username"] == "alice" and claims["name"] == "Alice Ávila"
        assert claims["email"] == "alice@example.org"
        digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        info = await b.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert info.status_code == 200, info.text
        assert info.json() == {
            "sub": idp.alice_id,
            "preferred_username": "alice",
            "name": "Alice Ávila",
            "email": "alice@example.org",
        }

        # client_secret_post, the other registered redirect URI, PKCE by choice, POST /authorize,
        # and a smaller scope: the subject stays the same, the claims follow the scope.
        verifier, challenge = pkce()
        params = auth_params(
            "web", WEB_LOOPBACK, scope="openid profile", code_challenge=challenge, code_challenge_method="S256"
        )
        page = await b.post("/oidc/authorize", data=params)
        assert page.status_code == 200, page.text
        done = await submit(b, form_fields(page.text), "ALICE ", PASSWORD)
        assert done.status_code == 302, done.text
        code = query(done.headers["location"])["code"]
        response = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret, code_verifier=verifier)
        assert response.status_code == 200, response.text
        claims = await verified_id_token(b, response.json()["id_token"])
        assert claims["sub"] == idp.alice_id and claims["preferred_username"] == "alice" and "email" not in claims
        info = await b.get("/oidc/userinfo", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
        assert info.json() == {"sub": idp.alice_id, "preferred_username": "alice", "name": "Alice Ávila"}


async def test_public_client_with_pkce(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        verifier, challenge = pkce()
        params = auth_params(
            "mobile", NATIVE_REDIRECT, scope="openid", code_challenge=challenge, code_challenge_method="S256"
        )
        code = await get_code(b, params)
        response = await redeem(b, params, code, client_id="mobile", code_verifier=verifier)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["scope"] == "openid"
        claims = await verified_id_token(b, body["id_token"])
        assert claims["aud"] == "mobile" and claims["sub"] == idp.alice_id and claims["nonce"] == params["nonce"]
        assert "preferred_username" not in claims and "email" not in claims
        info = await b.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert info.json() == {"sub": idp.alice_id}


async def test_authlib_relying_party(node: Node, idp: Idp) -> None:
    """What Synapse does, with the library Synapse uses: discovery, S256, client_secret_basic,
    ID token checked as a CodeIDToken (iss, aud, nonce, at_hash, exp) against the JWKS."""
    from authlib.deprecate import AuthlibDeprecationWarning  # sets its own filter when imported

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)  # authlib.jose, its httpx module
        from authlib.integrations.httpx_client import AsyncOAuth2Client
        from authlib.jose import JsonWebKey, JsonWebToken
        from authlib.oidc.core import CodeIDToken

    async with browser(node) as b:
        meta = (await b.get("/oidc/.well-known/openid-configuration")).json()
        rp = AsyncOAuth2Client(
            "web",
            idp.web_secret,
            scope="openid profile",
            redirect_uri=WEB_LOOPBACK,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
        )
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        url, state = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        page = await b.get(url)
        assert page.status_code == 200, page.text
        done = await submit(b, form_fields(page.text), "alice", PASSWORD)
        assert done.status_code == 302, done.text
        token = await rp.fetch_token(
            meta["token_endpoint"], authorization_response=done.headers["location"], code_verifier=verifier, state=state
        )
        await rp.aclose()
        keys = JsonWebKey.import_key_set((await b.get(meta["jwks_uri"])).json())
        claims = JsonWebToken(["RS256"]).decode(
            token["id_token"],
            key=keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"values": [meta["issuer"]]}, "aud": {"values": ["web"]}},
            claims_params={"nonce": nonce, "access_token": token["access_token"]},
        )
        claims.validate(leeway=120)
        assert claims["sub"] == idp.alice_id and claims["preferred_username"] == "alice"


# --- authorization requests ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("nope", WEB_REDIRECT),
        ("web", WEB_REDIRECT + "/"),
        ("web", WEB_REDIRECT + "?x=1"),
        ("web", "https://RP.example/callback"),
        ("web", WEB_REDIRECT + "#frag"),
        ("web", "https://evil.example/callback"),
        ("web", OTHER_REDIRECT),  # registered, but for another client
        ("web", None),
        (None, WEB_REDIRECT),
    ],
)
async def test_bad_client_or_redirect_never_redirects(
    node: Node, idp: Idp, client_id: str | None, redirect_uri: str | None
) -> None:
    async with browser(node) as b:
        params = auth_params(client_id or "", redirect_uri or "")
        params = {k: v for k, v in params.items() if v}
        page = await b.get("/oidc/authorize", params=params)
        assert page.status_code == 400 and "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html") and "login_id" not in page.text


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "extra", "error"),
    [
        ("mobile", NATIVE_REDIRECT, {}, "invalid_request"),  # public client without PKCE
        ("mobile", NATIVE_REDIRECT, {"code_challenge": "c" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ("mobile", NATIVE_REDIRECT, {"code_challenge": "c" * 43}, "invalid_request"),  # method defaults to plain
        ("web", WEB_REDIRECT, {"code_challenge": "c" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ("web", WEB_REDIRECT, {"scope": "profile email"}, "invalid_scope"),
        ("web", WEB_REDIRECT, {"response_type": "token"}, "unsupported_response_type"),
        ("web", WEB_REDIRECT, {"prompt": "none"}, "login_required"),
    ],
)
async def test_authorization_errors_go_back_to_the_client(
    node: Node, idp: Idp, client_id: str, redirect_uri: str, extra: dict[str, str], error: str
) -> None:
    async with browser(node) as b:
        params = auth_params(client_id, redirect_uri, **extra)
        response = await b.get("/oidc/authorize", params=params)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(redirect_uri + "?")
        back = query(location)
        assert back["error"] == error and back["state"] == params["state"] and "code" not in back


async def test_missing_state_is_refused(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        response = await b.get("/oidc/authorize", params=auth_params("web", WEB_REDIRECT, state=None))
        assert response.status_code == 302
        back = query(response.headers["location"])
        assert back["error"] == "invalid_request" and "state" not in back


async def test_login_page_is_plain_and_safe(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        page = await b.get("/oidc/authorize", params=auth_params("web", WEB_REDIRECT, login_hint='"><script>x'))
        assert page.status_code == 200
        html = page.text
        assert '<html lang="en">' in html and "<script>" not in html and "Web &lt;App&gt;" in html
        assert '<label for="username">' in html and '<label for="password">' in html
        assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html
        assert 'value="&quot;&gt;&lt;script&gt;x"' in html
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/oidc" in cookie


# --- the token endpoint -------------------------------------------------------------------
async def test_pkce_verifier_is_checked(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        verifier, challenge = pkce()
        params = auth_params("mobile", NATIVE_REDIRECT, code_challenge=challenge, code_challenge_method="S256")
        wrong = await redeem(b, params, await get_code(b, params), client_id="mobile", code_verifier=pkce()[0])
        assert grant_error(wrong) == "invalid_grant"
        missing = await redeem(b, params, await get_code(b, params), client_id="mobile")
        assert grant_error(missing) == "invalid_grant"
        # A verifier without a challenge in the authorization request is refused too.
        params = auth_params("web", WEB_REDIRECT)
        code = await get_code(b, params)
        extra = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret, code_verifier=verifier)
        assert grant_error(extra) == "invalid_grant"


async def test_code_is_single_use_and_replay_revokes(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        code = await get_code(b, params)
        first = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret)
        assert first.status_code == 200
        bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
        assert (await b.get("/oidc/userinfo", headers=bearer)).status_code == 200
        replay = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret)
        assert grant_error(replay) == "invalid_grant"
        assert (await b.get("/oidc/userinfo", headers=bearer)).status_code == 401


async def test_code_is_bound_to_client_and_redirect_uri(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        code = await get_code(b, params)
        stolen = await redeem(b, params, code, client_id="other", client_secret=idp.other_secret)
        assert grant_error(stolen) == "invalid_grant"
        # The attempt burnt the code: not even its own client gets it now.
        after = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret)
        assert grant_error(after) == "invalid_grant"

        code = await get_code(b, params)
        moved = await b.post(
            "/oidc/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_LOOPBACK},
            auth=("web", idp.web_secret),
        )
        assert grant_error(moved) == "invalid_grant"


async def test_client_authentication(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        code = await get_code(b, params)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
        for attempt in (
            await b.post("/oidc/token", data=form, auth=("web", "wrong-" + idp.web_secret)),
            await b.post("/oidc/token", data=form, auth=("web", idp.other_secret)),
            await b.post("/oidc/token", data={**form, "client_id": "web", "client_secret": "nope"}),
            await b.post("/oidc/token", data={**form, "client_id": "web"}),
            await b.post("/oidc/token", data={**form, "client_id": "ghost", "client_secret": idp.web_secret}),
            await b.post("/oidc/token", data=form),
        ):
            assert grant_error(attempt, 401) == "invalid_client"
            assert attempt.headers["www-authenticate"].startswith("Basic")
        both = await b.post("/oidc/token", data={**form, "client_secret": idp.web_secret}, auth=("web", idp.web_secret))
        assert grant_error(both) == "invalid_request"
        unsupported = await b.post("/oidc/token", data={**form, "grant_type": "password"}, auth=("web", idp.web_secret))
        assert grant_error(unsupported) == "unsupported_grant_type"
        # Failed client authentication never touched the code: the real client still gets it.
        ok = await b.post("/oidc/token", data=form, auth=("web", idp.web_secret))
        assert ok.status_code == 200, ok.text


async def test_expired_code(tight: Node, idp: Idp) -> None:
    async with browser(tight) as b:
        params = auth_params("web", WEB_REDIRECT)
        fresh = await redeem(b, params, await get_code(b, params), client_id="web", client_secret=idp.web_secret)
        assert fresh.status_code == 200, fresh.text
        code = await get_code(b, params)
        await asyncio.sleep(2.2)
        late = await redeem(b, params, code, client_id="web", client_secret=idp.web_secret)
        assert grant_error(late) == "invalid_grant"


async def test_userinfo_needs_a_valid_token(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        missing = await b.get("/oidc/userinfo")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        for header in ("Bearer " + secrets.token_urlsafe(32), "Bearer a.b.c", "Basic dXNlcjpwdw=="):
            bad = await b.get("/oidc/userinfo", headers={"Authorization": header})
            assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
            assert 'error="invalid_token"' in bad.headers["www-authenticate"]


# --- the login form -----------------------------------------------------------------------
async def test_wrong_password_and_unknown_user_look_the_same(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        fields = await open_login(b, auth_params("web", WEB_REDIRECT))
        wrong = await submit(b, fields, "alice", PASSWORD + "x")
        unknown = await submit(b, fields, "nobody", PASSWORD)
        invalid = await submit(b, fields, "not a valid name!", PASSWORD)
        for response in (wrong, unknown, invalid):
            assert response.status_code == 400 and "location" not in response.headers
            assert alert(response.text) == BAD_CREDENTIALS
            assert form_fields(response.text) == fields  # the same pending login goes on
        assert (await submit(b, fields, "alice", PASSWORD)).status_code == 302
        # A finished login cannot be submitted again.
        assert (await submit(b, fields, "alice", PASSWORD)).status_code == 400


async def test_disabled_account(env: Env, node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        token = await redeem(
            b, params, await get_code(b, params, "bob", BOB_PASSWORD), client_id="web", client_secret=idp.web_secret
        )
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert (await b.get("/oidc/userinfo", headers=bearer)).status_code == 200
        pending_code = await get_code(b, params, "bob", BOB_PASSWORD)

        out = env.cli("user", "disable", "bob", check=False)
        assert out.returncode == 0, out.stderr
        try:
            assert (await b.get("/oidc/userinfo", headers=bearer)).status_code == 401
            late = await redeem(b, params, pending_code, client_id="web", client_secret=idp.web_secret)
            assert grant_error(late) == "invalid_grant"
            fields = await open_login(b, params)
            refused = await submit(b, fields, "bob", BOB_PASSWORD)
            assert refused.status_code == 400 and "location" not in refused.headers
            assert "disabled" in alert(refused.text)
            # The wrong password for a disabled account says nothing about the account.
            assert alert((await submit(b, fields, "bob", "wrong password!")).text) == BAD_CREDENTIALS
        finally:
            assert env.cli("user", "enable", "bob", check=False).returncode == 0
        assert (await submit(b, fields, "bob", BOB_PASSWORD)).status_code == 302


async def test_login_form_csrf(node: Node, idp: Idp) -> None:
    async with browser(node) as b:
        fields = await open_login(b, auth_params("web", WEB_REDIRECT))
        creds = {"username": "alice", "password": PASSWORD}
        missing = await b.post("/oidc/login", data={"login_id": fields["login_id"], **creds})
        wrong = await b.post("/oidc/login", data={**fields, "csrf_token": secrets.token_urlsafe(32), **creds})
        unknown = await b.post("/oidc/login", data={**fields, "login_id": secrets.token_urlsafe(24), **creds})
        async with browser(node) as elsewhere:  # right token, but not the browser that opened the form
            other_browser = await elsewhere.post("/oidc/login", data={**fields, **creds})
        for response, status in ((missing, 403), (wrong, 403), (unknown, 400), (other_browser, 403)):
            assert response.status_code == status and "location" not in response.headers, response.text
            assert "login_id" not in response.text
        assert (await submit(b, fields, "alice", PASSWORD)).status_code == 302


async def test_login_rate_limit(tight: Node, idp: Idp) -> None:
    async with browser(tight) as b, browser(tight) as neighbour:
        params = auth_params("web", WEB_REDIRECT)
        fields = await open_login(b, params)
        other_fields = await open_login(neighbour, params)
        while time.time() % 3 > 0.3:  # start at the beginning of a 3-second window
            await asyncio.sleep(0.02)
        for _ in range(3):
            assert (await submit(b, fields, "alice", "wrong password!")).status_code == 400
        limited = await submit(b, fields, "alice", PASSWORD)
        assert limited.status_code == 429 and "location" not in limited.headers
        retry = int(limited.headers["retry-after"])
        assert 1 <= retry <= 4 and "Too many" in alert(limited.text)
        # Another address is not affected.
        assert (await submit(neighbour, other_fields, "alice", PASSWORD)).status_code == 302
        await asyncio.sleep(retry)
        assert (await submit(b, fields, "alice", PASSWORD)).status_code == 302


async def test_wrong_passwords_lock_one_account_at_one_address_only(node: Node, idp: Idp) -> None:
    """Failed passwords count per account and address (default: 10 per 5 minutes): past the
    limit even the right password waits, while the same address (a school) still signs in to
    other accounts, and the account still signs in from elsewhere."""
    limit, seconds = 10, 300  # OH_RATE_LIMIT_PASSWORD's default; the session node runs with it
    if seconds - time.time() % seconds < 20:  # all attempts in one fixed window
        await asyncio.sleep(seconds - time.time() % seconds + 0.1)
    async with browser(node) as b:
        params = auth_params("web", WEB_REDIRECT)
        fields = await open_login(b, params)
        for _ in range(limit):
            wrong = await submit(b, fields, "bob", "not bob's password")
            assert wrong.status_code == 400 and alert(wrong.text) == BAD_CREDENTIALS
        limited = await submit(b, fields, "bob", BOB_PASSWORD)
        assert limited.status_code == 429 and "location" not in limited.headers
        assert "Too many" in alert(limited.text) and 1 <= int(limited.headers["retry-after"]) <= seconds + 1
        # Same address, another account: signs in.
        assert await get_code(b, auth_params("web", WEB_REDIRECT), "alice", PASSWORD)
        # Same account, another address: signs in.
        async with browser(node) as elsewhere:
            assert await get_code(elsewhere, auth_params("web", WEB_REDIRECT), "bob", BOB_PASSWORD)


# --- CLI ----------------------------------------------------------------------------------
async def test_cli_accounts_and_clients(env: Env, idp: Idp) -> None:
    again, short, no_tty, bad_name, ghost, bad_uri, loopback, dup = oneheart_many(
        env,
        (["user", "add", "alice", "--password-stdin"], PASSWORD + "\n"),
        (["user", "add", "shorty", "--password-stdin"], "123456789\n"),
        (["user", "add", "quiet"], ""),
        (["user", "add", "Not Valid", "--password-stdin"], PASSWORD + "\n"),
        (["user", "disable", "ghost"], ""),
        (["idp-client", "add", "bad", "--name", "Bad", "--redirect-uri", "http://rp.example/cb"], ""),
        (["idp-client", "add", "local", "--name", "Local", "--redirect-uri", "http://[::1]:9/cb"], ""),
        (["idp-client", "add", "web", "--name", "W", "--redirect-uri", WEB_REDIRECT], ""),
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert short.returncode == 1 and "at least 10" in short.stderr
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    assert bad_name.returncode == 1 and "invalid username" in bad_name.stderr
    assert ghost.returncode == 1 and "unknown account" in ghost.stderr
    assert bad_uri.returncode == 1 and "http is allowed only for" in bad_uri.stderr
    assert loopback.returncode == 0, loopback.stderr
    assert dup.returncode == 1 and "already exists" in dup.stderr
    assert rows(env.dsn_a, "SELECT count(*) FROM global.idp_accounts WHERE username IN ('shorty', 'quiet')") == [(0,)]

    [(password_hash,)] = rows(env.dsn_a, "SELECT password_hash FROM global.idp_accounts WHERE username = 'alice'")
    assert str(password_hash).startswith("$argon2id$") and PASSWORD not in str(password_hash)
    users = {u["username"]: u for u in json.loads(env.cli("user", "list", "--json").stdout)}
    assert users["alice"]["id"] == idp.alice_id and users["alice"]["email"] == "alice@example.org"
    assert "password_hash" not in users["alice"]

    clients = {c["client_id"]: c for c in json.loads(env.cli("idp-client", "list", "--json").stdout)}
    assert "bad" not in clients and clients["mobile"]["type"] == "public" and clients["web"]["type"] == "confidential"
    assert clients["web"]["redirect_uris"] == [WEB_REDIRECT, WEB_LOOPBACK]
    assert idp.web_secret not in json.dumps(clients)
    [(secret_hash,)] = rows(env.dsn_a, "SELECT secret_hash FROM global.idp_clients WHERE client_id = 'web'")
    assert secret_hash == "sha256$" + hashlib.sha256(idp.web_secret.encode()).hexdigest()


@pytest.mark.parametrize(
    ("uri", "public", "ok"),
    [
        ("https://rp.example/cb", False, True),
        ("https://rp.example/cb?x=1", False, True),
        ("http://127.0.0.1:8008/cb", False, True),
        ("http://localhost/cb", False, True),
        ("http://[::1]:9/cb", True, True),
        ("com.example.app:/callback", True, True),
        ("http://rp.example/cb", False, False),
        ("http://127.0.0.1.evil.example/cb", False, False),
        ("https://rp.example/cb#x", False, False),
        ("https://rp.example/cb#", False, False),
        ("com.example.app:/cb", False, False),  # private-use schemes only for public clients
        ("myapp:/cb", True, False),  # not reverse-DNS
        ("javascript:alert(1)", True, False),
        ("data:text/html,x", True, False),
        ("https://user@rp.example/cb", False, False),
        ("https:///cb", False, False),
        ("", False, False),
    ],
)
def test_redirect_uri_rules(uri: str, public: bool, ok: bool) -> None:
    if ok:
        assert check_redirect_uri(uri, public=public) == uri
    else:
        with pytest.raises(InvalidInput):
            check_redirect_uri(uri, public=public)
