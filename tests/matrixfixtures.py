"""Two real Synapse homeservers that federate over TLS on loopback, and the Matrix gateway.

Import the fixtures into a test module: ``from tests.matrixfixtures import federation_fixture, gateway_fixture``
(they are named ``federation`` and ``gateway``).

- territories ``north`` (database server a) and ``south`` (server b), each with its homeserver
  (``localhost:<federation port>``, client API on a second port), the gateway's application
  service registered on both (pushing to one gateway port), and single sign-on through the
  node's built-in OIDC provider;
- ``gateway``: ``oneheart gateway`` in its own process (kill and restart it with ``.restart()``);
- matrix-nio clients for test users (``MatrixUser``), registered with the shared secret.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from devstack.system import free_port, wait_for
from nio import AsyncClient, AsyncClientConfig, RoomMessagesResponse

from core.routing import Router
from devstack import synapse
from federation import config
from federation.config import HomeserverConfig
from federation.homeservers import register_sso_client
from federation.registration import appservice_registration
from territories.registry import Registry
from tests.conftest import Env, Node, Proc

TERRITORIES = (("north", "Northland", "a"), ("south", "Southland", "b"))


@dataclass
class Server:
    code: str
    hs: synapse.Homeserver
    cfg: HomeserverConfig

    @property
    def name(self) -> str:
        return self.hs.server_name


@dataclass
class Federation:
    north: Server
    south: Server
    gateway_port: int
    tls: synapse.Tls

    def servers(self) -> list[Server]:
        return [self.north, self.south]


def _write(server: Server, tls: synapse.Tls, gateway_port: int, node_url: str) -> None:
    registration = server.hs.folder / "appservice.json"
    registration.parent.mkdir(parents=True, exist_ok=True)
    registration.write_text(
        json.dumps(
            appservice_registration(
                territory=server.code,
                server_name=server.name,
                url=f"http://127.0.0.1:{gateway_port}/territories/{server.code}",
                as_token=server.cfg.as_token,
                hs_token=server.cfg.hs_token,
            )
        )
    )
    oidc = synapse.oidc_provider(
        issuer=f"{node_url}/oidc",
        client_id=server.cfg.oidc_client_id or "",
        client_secret=server.cfg.oidc_client_secret or "",
    )
    synapse.write_config(
        server.hs,
        tls,
        appservices=[registration],
        oidc=oidc,
        sso_client_whitelist=[f"{node_url}/"],
        limits=synapse.RELAXED_LIMITS,
    )


@pytest_asyncio.fixture(name="federation", scope="session", loop_scope="session")
async def federation_fixture(
    env: Env, router: Router, node: Node, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Federation]:
    root = tmp_path_factory.mktemp("synapse")
    tls = synapse.ensure_tls(root / "ca")
    gateway_port = free_port()
    servers: dict[str, Server] = {}
    for code, name, db_server in TERRITORIES:
        await Registry(router, "test").create_territory(code, name, db_server)
        hs = synapse.Homeserver(root / code, free_port(), free_port())
        cfg = HomeserverConfig(
            server_name=hs.server_name,
            url=hs.url,
            as_token=config.new_token(),
            hs_token=config.new_token(),
            oidc_issuer=f"{node.url}/oidc",
            oidc_client_id=f"synapse-{code}",
            oidc_client_secret=config.new_token(),
        )
        servers[code] = Server(code, hs, cfg)
        _write(servers[code], tls, gateway_port, node.url)
    started = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(synapse.start_synapse, s.hs) for s in servers.values()))
    print(f"two homeservers started in {time.monotonic() - started:.1f}s")
    for server in servers.values():
        admin = await asyncio.to_thread(
            synapse.register_user, server.hs, synapse.ADMIN_USER, secrets.token_urlsafe(16), admin=True
        )
        server.cfg = HomeserverConfig(**{**_fields(server.cfg), "admin_token": admin["access_token"]})
        config.save(env.settings, server.code, server.cfg)
        await Registry(router, "test").set_homeserver(server.code, server.name)
        await register_sso_client(router, server.cfg)
    yield Federation(servers["north"], servers["south"], gateway_port, tls)
    for server in servers.values():
        await asyncio.to_thread(synapse.stop_synapse, server.hs)


def _fields(cfg: HomeserverConfig) -> dict[str, Any]:
    return {f: getattr(cfg, f) for f in cfg.__struct_fields__}


class Gateway:
    """``oneheart gateway`` on the federation's gateway port, in its own process."""

    def __init__(self, env: Env, port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: Proc | None = None

    def start(self) -> Gateway:
        self.proc = Proc(
            self.env,
            ["gateway", "--port", str(self.port)],
            self.log,
            OH_CONSUMER_MAX_BACKOFF="2",
            OH_MATRIX_REQUEST_TIMEOUT="3",
        ).start()

        def up() -> bool:
            if self.proc and self.proc.proc and self.proc.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 30, "oneheart gateway")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc:
            self.proc.kill(sig)

    def restart(self) -> Gateway:
        self.kill()
        return self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(name="gateway", scope="module")
def gateway_fixture(env: Env, federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(env, federation.gateway_port, tmp_path_factory.mktemp("gateway") / "gateway.log").start()
    yield g
    g.kill(signal.SIGTERM)


# --- Matrix users -------------------------------------------------------------------------------
class MatrixUser:
    """A plain matrix-nio client of a test user on one homeserver."""

    def __init__(self, server: Server, localpart: str | None = None, *, token: str | None = None) -> None:
        self.server = server
        if token is None:
            localpart = localpart or f"w{secrets.token_hex(4)}"
            made = synapse.register_user(server.hs, localpart, secrets.token_urlsafe(16))
            user_id, token = made["user_id"], made["access_token"]
        else:
            user_id = localpart or ""
        self.user_id = user_id
        self.client = AsyncClient(
            server.hs.url, user_id, config=AsyncClientConfig(max_timeouts=2, request_timeout=10, max_limit_exceeded=5)
        )
        self.client.access_token = token
        self.client.user_id = user_id

    async def join(self, alias_or_id: str) -> str:
        resp = await self.client.join(alias_or_id)
        assert hasattr(resp, "room_id"), resp
        return str(resp.room_id)

    async def say(self, room_id: str, body: str) -> str:
        resp = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        assert hasattr(resp, "event_id"), resp
        return str(resp.event_id)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        resp = await self.client.room_send(room_id, "m.reaction", content)
        assert hasattr(resp, "event_id"), resp
        return str(resp.event_id)

    async def redact(self, room_id: str, event_id: str) -> None:
        resp = await self.client.room_redact(room_id, event_id)
        assert hasattr(resp, "event_id"), resp

    async def events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The room's latest events as this user's homeserver has them (raw JSON, newest first)."""
        resp = await self.client.room_messages(room_id, start=None, limit=limit)
        assert isinstance(resp, RoomMessagesResponse), resp
        return [e.source for e in resp.chunk]

    async def close(self) -> None:
        await self.client.close()
