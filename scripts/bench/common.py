"""Shared pieces of the benchmarks: a scratch registry database, processes, wrk."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from devstack.cli import read_stack_env
from devstack.postgres import ensure_database
from devstack.system import apt_install, free_port, wait_for

from core.settings import Settings
from devstack import nats as stack_nats

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def scratch_database(name: str) -> str:
    """A fresh database on the stack's primary server; returns its DSN."""
    settings = Settings()
    server = settings.registry.dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return ensure_database(server, name)


def private_nats(data_dir: Path) -> str:
    """A nats-server of the benchmark's own (stopped at exit): its events never reach the
    stream of a node running on the machine's NATS, and that node's never reach it."""
    url = stack_nats.start_nats(data_dir / "nats", free_port())
    atexit.register(stack_nats.stop_nats, data_dir / "nats")
    return url


def env_for(dsn: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for node processes on the scratch database: a private NATS (unless
    ``OH_NATS_URL`` is given), the stack's Redis and IPFS from ``.data/stack.env`` unless the
    environment names them."""
    stack = read_stack_env(Path(os.environ.get("OH_DATA_DIR", REPO / ".data")))
    env = {**stack, **{k: v for k, v in os.environ.items() if k != "OH_REGISTRY_DSN"}}
    if "OH_NATS_URL" not in extra:
        extra = {**extra, "OH_NATS_URL": private_nats(data_dir)}
    env.update(OH_REGISTRY_DSN=dsn, OH_DATA_DIR=str(data_dir), OH_LOG_LEVEL="WARNING", **extra)
    return env


def cli(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([PY, "-m", "node", *args], env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def start(cmd: list[str], env: dict[str, str], port: int, probe: str, headers: dict[str, str] | None = None) -> Server:
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + probe, headers=headers, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, " ".join(cmd[:4]))
    return Server(proc, url)


def ensure_wrk() -> str:
    if shutil.which("wrk") is None:
        apt_install("wrk")
    return shutil.which("wrk") or "wrk"


@dataclass
class Load:
    rps: float
    p99_ms: float
    p50_ms: float


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, headers: dict[str, str], seconds: int = 8, connections: int = 32) -> Load:
    args = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError) as exc:
        raise RuntimeError(f"could not read wrk's output ({exc}):\n{out}") from None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error responses from {url}")
    return Load(rps, p99, p50)


def median_load(loads: list[Load]) -> Load:
    return Load(
        statistics.median(x.rps for x in loads),
        statistics.median(x.p99_ms for x in loads),
        statistics.median(x.p50_ms for x in loads),
    )


__all__ = ["Load", "Server", "cli", "env_for", "free_port", "median_load", "scratch_database", "start", "wrk"]
