"""Redis for development: the machine's server, or one we start."""

from __future__ import annotations

from pathlib import Path

import redis

from devstack.system import (
    port_open,
    read_pid,
    reuse_or_start,
    run,
    server_binary,
    stop_pid,
    wait_for,
)

DEFAULT_PORT = 6379
FALLBACK_PORT = 56379
START_TIMEOUT = 20.0


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at ``url`` answers PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _files(data_dir: Path) -> tuple[Path, Path, Path, Path]:
    root = Path(data_dir).resolve()
    store = root / "redis"
    return store, store / "redis-server.pid", store / "port", root / "logs" / "redis.log"


def our_port(data_dir: Path) -> int | None:
    """The port of the redis-server we started for ``data_dir``, if it still runs."""
    _store, pidfile, portfile, _log = _files(data_dir)
    if read_pid(pidfile, "redis-server") is None:
        return None
    try:
        return int(portfile.read_text())
    except (OSError, ValueError):
        return None


def ensure_redis(data_dir: Path) -> str:
    """A Redis URL: 127.0.0.1:6379 when it answers, else a redis-server of our own."""
    return reuse_or_start(
        what="redis-server",
        ours=our_port(data_dir),
        url_for=redis_url,
        healthy=answers,
        default_port=DEFAULT_PORT,
        fallback_port=FALLBACK_PORT,
        start=lambda port: start_redis(data_dir, port),
        timeout=START_TIMEOUT,
    )


def start_redis(data_dir: Path, port: int) -> str:
    """Start our own redis-server for ``data_dir`` on 127.0.0.1:``port``; return its URL."""
    running = our_port(data_dir)
    if running is not None:
        if running != port:
            raise RuntimeError(f"our redis-server for {data_dir} already runs on port {running}, not {port}")
        return redis_url(port)
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is already taken by another program; pick another port")
    binary = server_binary("redis-server", "redis-server")
    store, pidfile, portfile, log = _files(data_dir)
    store.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(store),
        "--daemonize", "yes",
        "--pidfile", str(pidfile),
        "--logfile", str(log),
    ]  # fmt: skip
    result = run(cmd, cwd=store)
    if result.returncode != 0:
        raise RuntimeError(f"redis-server did not start: {result.stderr.strip() or result.stdout.strip()}")
    portfile.write_text(str(port))
    url = redis_url(port)
    wait_for(lambda: answers(url), START_TIMEOUT, f"redis-server on port {port} (log: {log})")
    return url


def stop_redis(data_dir: Path) -> None:
    """Stop the redis-server that ensure_redis started for ``data_dir``; never the machine's."""
    _store, pidfile, portfile, _log = _files(data_dir)
    pid = read_pid(pidfile, "redis-server")
    if pid is not None:
        stop_pid(pid, "redis-server")
    pidfile.unlink(missing_ok=True)
    portfile.unlink(missing_ok=True)
