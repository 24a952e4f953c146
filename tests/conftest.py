"""Real services for the suite: two Postgres servers, an isolated NATS with JetStream, Redis, IPFS.

- server A: the machine's Postgres (``OH_TEST_PG_DSN``, default 127.0.0.1:5432), in a fresh
  database per run;
- server B: a second cluster made with initdb on a free port under the run's tmp dir;
- NATS: our own ``nats-server -js`` on a free port (isolated from any node on 4222);
- Redis: the stack's Redis, database 15;
- IPFS: our own js-ipfs daemon on a free port (``ipfs`` fixture; installed once into ~/.cache).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio
from devstack.postgres import database_dsn, ensure_database, stop_cluster
from devstack.system import free_port, wait_for
from pydantic import SecretStr

from core.auth import Identity, issue_access, node_keys
from core.routing import Router
from core.settings import Settings
from devstack import ipfs as stack_ipfs
from devstack import nats as stack_nats
from territories.migrate import upgrade_global
from territories.registry import Registry, open_router
from tests.browser import browser  # noqa: F401  (the browser tests' fixture; overrides pytest-playwright's)
from tests.stackfixtures import start_second_server

REPO = Path(__file__).resolve().parent.parent
ONEHEART = [sys.executable, "-m", "node"]
ADMIN_TOKEN = "test-admin-" + secrets.token_hex(8)


@dataclass
class Env:
    settings: Settings
    dsn_a: str  # registry database, also server "a"
    dsn_b: str  # database on the second cluster, server "b"
    cluster_b: Path
    data_dir: Path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OH_")}
        env.update(
            OH_DATA_DIR=str(self.data_dir),
            OH_REGISTRY_DSN=self.settings.registry.dsn,
            OH_NATS_URL=self.settings.events.nats_url,
            OH_REDIS_URL=self.settings.redis.url,
            OH_IPFS_URL=self.settings.evidence.ipfs_url,
            OH_ADMIN_TOKEN=ADMIN_TOKEN,
            OH_LOG_LEVEL="INFO",
            OH_RELAY_SWEEP_INTERVAL="1",
            OH_CONSUMER_ACK_WAIT="5",
        )
        env.update(extra)
        return env

    def cli(
        self, *args: str, check: bool = True, stdin: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*ONEHEART, *args],
            input=stdin,
            env=self.environ(**extra),
            cwd=self.data_dir,
            text=True,
            capture_output=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"oneheart {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our own js-ipfs daemon (installed once into the user's cache) on a free port; its RPC URL."""
    folder = tmp_path_factory.mktemp("ipfs")
    url = stack_ipfs.start_ipfs(folder, free_port())
    yield url
    stack_ipfs.stop_ipfs(folder)


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory, ipfs: str) -> Iterator[Env]:
    base = os.environ.get("OH_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oh_test_{os.getpid()}"
    dsn_a = ensure_database(base, name)
    server_b, cluster_b = start_second_server(tmp_path_factory)
    dsn_b = ensure_database(server_b, "oneheart")
    nats_dir = tmp_path_factory.mktemp("nats")
    nats_url = stack_nats.start_nats(nats_dir, free_port())
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(data_dir=data_dir).replace(
        registry={"dsn": dsn_a},
        redis={"url": os.environ.get("OH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")},
        evidence={"ipfs_url": ipfs},
        auth={"admin_token": SecretStr(ADMIN_TOKEN)},
        # A consumer killed mid-batch gets its messages again after ack_wait: keep tests quick.
        events={"nats_url": nats_url, "relay_sweep_interval": 1.0, "consumer_ack_wait": 5.0},
        log={"as_json": True},
    )
    yield Env(settings, dsn_a, dsn_b, cluster_b, data_dir)
    stack_nats.stop_nats(nats_dir)
    stop_cluster(cluster_b)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def router(env: Env) -> AsyncIterator[Router]:
    node_keys(env.settings).ensure_current()  # before any node starts: they all load this ring
    r = open_router(env.settings)
    await upgrade_global(r.registry)
    await Registry(r, "test").add_server("a", env.dsn_a, "eu-north")
    await Registry(r, "test").add_server("b", env.dsn_b, "eu-west")
    for code, name, server in (("dk", "Denmark", "a"), ("sami", "Sápmi", "b"), ("ca", "Canada", "b")):
        await Registry(r, "test").create_territory(code, name, server)
    yield r
    await r.close()


class Proc:
    """A ``oneheart`` subprocess (serve or worker) with its log file."""

    def __init__(self, env: Env, args: list[str], log: Path, **extra: str) -> None:
        self.env, self.args, self.log, self.extra = env, args, log, extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*ONEHEART, *self.args],
            env=self.env.environ(**self.extra),
            cwd=self.env.data_dir,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


# Tokens the suite mints with the node's own signing key (shared data dir). Logins through a
# real provider are tested in test_auth.py; elsewhere a staff token stands in for one.
STAFF_ROLES = {"*": ["global_admin", "operator", "player"]}


@dataclass
class Node:
    url: str
    proc: Proc
    env: Env

    def token(
        self,
        home: str = "dk",
        roles: dict[str, list[str]] | None = None,
        user_id: uuid.UUID | None = None,
        **claims: object,
    ) -> str:
        settings = self.env.settings.replace(http={"public_url": self.url})
        identity = Identity(user_id or uuid.uuid4(), home, STAFF_ROLES if roles is None else roles)
        if not claims:
            return issue_access(node_keys(settings).load(), settings, identity)
        import time as _time

        base = {
            "iss": self.url,
            "aud": "oneheart",
            "sub": str(identity.user_id),
            "home": home,
            "roles": identity.roles,
            "iat": int(_time.time()),
            "exp": int(_time.time()) + 600,
            "jti": "t",
        }
        return node_keys(settings).load().sign({**base, **claims})

    def auth(self, **kw: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}"}  # type: ignore[arg-type]

    def client(
        self, territory: str | None = None, headers: dict[str, str] | None = None, *, anonymous: bool = False
    ) -> httpx.AsyncClient:
        merged = {**({} if anonymous else self.auth()), **({"X-Territory": territory} if territory else {})}
        merged.update(headers or {})
        return httpx.AsyncClient(base_url=self.url, headers=merged, timeout=30)


def start_node(env: Env, log: Path, **extra: str) -> Node:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra.setdefault("OH_PUBLIC_URL", url)
    proc = Proc(env, ["serve", "--port", str(port)], log, **extra).start()

    def up() -> bool:
        if proc.proc and proc.proc.poll() is not None:
            raise RuntimeError(f"node exited:\n{proc.log_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "oneheart serve")
    return Node(url, proc, env)


@pytest.fixture(scope="session")
def node(env: Env, router: Router, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The node's API in its own process, on a free loopback port."""
    n = start_node(env, tmp_path_factory.mktemp("node") / "node.log", OH_REGISTRY_CACHE_TTL="300")
    yield n
    n.proc.kill(signal.SIGTERM)


@pytest.fixture
def worker(env: Env, router: Router, tmp_path: Path) -> Iterator[Proc]:
    """A worker process (relay + consumers); killed at the end of the test."""
    w = Proc(env, ["worker"], tmp_path / "worker.log").start()
    yield w
    w.kill(signal.SIGTERM)


async def eventually(check, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Await ``check()`` until it returns a truthy value; fail with its last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def rows(dsn: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run SQL on a server directly (committed); returns the last statement's rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def server_dsn(dsn: str) -> str:
    return database_dsn(dsn, "postgres")
