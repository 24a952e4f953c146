"""NATS with JetStream for development: the machine's server, or one we start."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats
from nats.errors import Error as NatsError

from devstack.system import port_open, read_pid, reuse_or_start, server_binary, stop_pid, wait_for

DEFAULT_PORT = 4222
FALLBACK_PORT = 54222
START_TIMEOUT = 20.0
T = TypeVar("T")


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (a test, the app): run the check on a private loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _quiet(_error: Exception) -> None:
    return None  # failures are reported through the return value


async def _has_jetstream(url: str, wait: float) -> bool:
    try:
        nc = await nats.connect(
            url, connect_timeout=wait, allow_reconnect=False, max_reconnect_attempts=0, error_cb=_quiet
        )
    except (TimeoutError, NatsError, OSError):
        return False
    try:
        await nc.jetstream(timeout=wait).account_info()
        return True
    except (TimeoutError, NatsError, OSError):
        return False
    finally:
        await nc.close()


def jetstream_ready(url: str, timeout: float = 2.0) -> bool:
    """True when a NATS server answers at ``url`` with JetStream enabled."""
    parts = urlsplit(url)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT, timeout):
        return False  # nats-py keeps retrying a refused first connection; don't ask it
    return _run_async(_bounded(_has_jetstream(url, timeout), 3 * timeout))


async def _bounded(coro: Coroutine[Any, Any, bool], seconds: float) -> bool:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        return False


def nats_url(port: int) -> str:
    return f"nats://127.0.0.1:{port}"


def _files(data_dir: Path) -> tuple[Path, Path, Path, Path]:
    root = Path(data_dir).resolve()
    store = root / "nats"
    return store, store / "nats-server.pid", store / "port", root / "logs" / "nats.log"


def our_port(data_dir: Path) -> int | None:
    """The port of the nats-server we started for ``data_dir``, if it still runs."""
    _store, pidfile, portfile, _log = _files(data_dir)
    if read_pid(pidfile, "nats-server") is None:
        return None
    try:
        return int(portfile.read_text())
    except (OSError, ValueError):
        return None


def ensure_nats(data_dir: Path) -> str:
    """A NATS URL with JetStream: 127.0.0.1:4222 when it has JetStream, else our own server."""
    return reuse_or_start(
        what="nats-server",
        ours=our_port(data_dir),
        url_for=nats_url,
        healthy=jetstream_ready,
        default_port=DEFAULT_PORT,
        fallback_port=FALLBACK_PORT,
        start=lambda port: start_nats(data_dir, port),
        timeout=START_TIMEOUT,
    )


def start_nats(data_dir: Path, port: int) -> str:
    """Start our own nats-server for ``data_dir`` on 127.0.0.1:``port``; return its URL."""
    running = our_port(data_dir)
    if running is not None:
        if running != port:
            raise RuntimeError(f"our nats-server for {data_dir} already runs on port {running}, not {port}")
        return nats_url(port)
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is already taken by another program; pick another port")
    binary = server_binary("nats-server", "nats-server")
    store, pidfile, portfile, log = _files(data_dir)
    store.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store), "-P", str(pidfile)]
    with log.open("ab") as out:
        # Own session: the server outlives the command that started it, like a daemon.
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    portfile.write_text(str(port))
    url = nats_url(port)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with code {proc.returncode}; see {log}")
        return port_open("127.0.0.1", port) and jetstream_ready(url)

    wait_for(ready, START_TIMEOUT, f"nats-server on port {port} (log: {log})")
    return url


def stop_nats(data_dir: Path) -> None:
    """Stop the nats-server that ensure_nats started for ``data_dir``; never the machine's."""
    _store, pidfile, portfile, _log = _files(data_dir)
    pid = read_pid(pidfile, "nats-server")
    if pid is not None:
        stop_pid(pid, "nats-server")
    pidfile.unlink(missing_ok=True)
    portfile.unlink(missing_ok=True)
