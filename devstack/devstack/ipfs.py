"""IPFS for development: the machine's daemon on 5001, or a js-ipfs node of our own.

Kubo cannot be installed here (its npm package downloads the binary at install time), so
development and CI run js-ipfs (npm ``ipfs``), which speaks the same Kubo RPC API, offline on
loopback. It is installed once into a cache directory outside the clone and reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.system import (
    find_program,
    pid_alive,
    port_open,
    read_pid,
    reuse_or_start,
    server_binary,
    stop_pid,
    wait_for,
)

IPFS_VERSION = "0.66.1"
# mortice >= 3.2 needs Node 22; 3.1.0 works on Node 18 and 20.
PACKAGE_JSON: dict[str, Any] = {
    "name": "oneheart-ipfs",
    "private": True,
    "description": "js-ipfs for OneHeart development and CI (installed by core/stack/ipfs.py)",
    "dependencies": {"ipfs": IPFS_VERSION},
    "overrides": {"mortice": "3.1.0"},
}
DEFAULT_PORT = 5001
FALLBACK_PORT = 55001
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
INSTALL_TIMEOUT = 1800.0
# js-ipfs sets its process title to "ipfs": that is all its command line shows.
PROGRAM = "ipfs"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Installation.


def cache_root() -> Path:
    """Where js-ipfs is installed: $OH_IPFS_CACHE, else $XDG_CACHE_HOME/oneheart or ~/.cache/oneheart."""
    explicit = os.environ.get("OH_IPFS_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "oneheart").resolve()


def _package_json() -> str:
    return json.dumps(PACKAGE_JSON, indent=2, sort_keys=True) + "\n"


def install_dir() -> Path:
    """The cache folder for this exact package.json (its content's hash is in the name)."""
    key = hashlib.sha256(_package_json().encode()).hexdigest()[:12]
    return cache_root() / f"js-ipfs-{IPFS_VERSION}-{key}"


def _binary(folder: Path) -> Path:
    return folder / "node_modules" / ".bin" / "jsipfs"


def installed() -> bool:
    """True when js-ipfs is already in the cache (no install needed)."""
    return _binary(install_dir()).exists()


def _node_and_npm() -> str:
    if find_program("node") is None:
        server_binary("node", "nodejs")
    npm = find_program("npm")
    if npm is None:
        npm = server_binary("npm", "npm")
    return npm


def install_ipfs() -> Path:
    """Install npm ``ipfs`` once into the cache (atomically, one installer at a time); the jsipfs path."""
    target = install_dir()
    binary = _binary(target)
    if binary.exists():
        return binary
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{target.name}.lock").open("w") as lock:
        # Another process may be installing the same package.json: wait for it, then reuse.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        # We hold the lock: any temporary folder left is from an interrupted install.
        for stale in root.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():  # a complete rename without the binary cannot happen; be safe
            shutil.rmtree(target)
        npm = _node_and_npm()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
        try:
            _npm_install(npm, tmp)
            if not _binary(tmp).exists():
                raise RuntimeError(f"npm install finished but {_binary(tmp)} is missing")
            tmp.chmod(0o755)  # mkdtemp made it private; the install is shared by the user's clones
            os.rename(tmp, target)  # atomic: a half-done install never carries the final name
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return binary


def _npm_install(npm: str, folder: Path) -> None:
    (folder / "package.json").write_text(_package_json())
    log = folder / "npm-install.log"
    cmd = [npm, "install", "--omit=optional", "--no-audit", "--no-fund", "--loglevel=warn"]
    _say(f"installing js-ipfs {IPFS_VERSION} (npm) into {install_dir()}: once per machine, about 4 minutes")
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            cmd, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            while True:
                try:
                    proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > INSTALL_TIMEOUT:
                        raise TimeoutError(f"npm install of js-ipfs took more than {INSTALL_TIMEOUT:.0f}s") from None
                    _say(f"  still installing js-ipfs ({elapsed:.0f}s)...")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise RuntimeError(f"npm install of js-ipfs {IPFS_VERSION} failed ({proc.returncode}):\n{tail}")
    _say(f"js-ipfs installed in {time.monotonic() - started:.0f}s")


# The daemon.


def ipfs_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _post_json(url: str, command: str, timeout: float) -> Any:
    """POST ``/api/v0/<command>`` at ``url``; the JSON answer of a 200, else None."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        conn = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    except ValueError:
        return None
    try:
        conn.request("POST", f"/api/v0/{command}", body=b"")
        response = conn.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read(1 << 20))
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def is_ipfs(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` serves an IPFS RPC API (POST /api/v0/version answers with a Version)."""
    body = _post_json(url, "version", timeout)
    return isinstance(body, dict) and isinstance(body.get("Version"), str)


def _answers_id(url: str) -> bool:
    body = _post_json(url, "id", 2.0)
    return isinstance(body, dict) and "ID" in body


def _files(data_dir: Path) -> tuple[Path, Path, Path, Path]:
    root = Path(data_dir).resolve()
    repo = root / "ipfs"
    return repo, repo / "jsipfs.pid", repo / "port", root / "logs" / "ipfs.log"


def _our_pid(data_dir: Path) -> int | None:
    """The pid of our daemon for ``data_dir`` if it runs: an "ipfs" process with our IPFS_PATH."""
    repo, pidfile, _portfile, _log = _files(data_dir)
    pid = read_pid(pidfile, PROGRAM)
    if pid is None:
        return None
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return pid  # not ours to read: trust the pid file and the process title
    return pid if f"IPFS_PATH={repo}".encode() in environ else None


def our_port(data_dir: Path) -> int | None:
    """The port of the js-ipfs daemon we started for ``data_dir``, if it still runs."""
    _repo, _pidfile, portfile, _log = _files(data_dir)
    if _our_pid(data_dir) is None:
        return None
    try:
        return int(portfile.read_text())
    except (OSError, ValueError):
        return None


def ensure_ipfs(data_dir: Path) -> str:
    """An IPFS RPC URL: 127.0.0.1:5001 when an IPFS daemon answers there, else a js-ipfs of ours."""
    return reuse_or_start(
        what="ipfs daemon",
        ours=our_port(data_dir),
        url_for=ipfs_url,
        healthy=is_ipfs,
        default_port=DEFAULT_PORT,
        fallback_port=FALLBACK_PORT,
        start=lambda port: start_ipfs(data_dir, port),
        timeout=START_TIMEOUT,
    )


def _daemon_config(port: int) -> dict[str, Any]:
    # Offline on loopback: no swarm (a non-empty swarm list hangs js-ipfs), no gateway, no gRPC.
    return {
        "Addresses": {
            "API": f"/ip4/127.0.0.1/tcp/{port}",
            "Gateway": [],
            "RPC": "",
            "Swarm": [],
            "Announce": [],
            "NoAnnounce": [],
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }


def _write_config(repo: Path, port: int) -> Path:
    """The init config for a new repo; an existing repo's config gets the same addresses."""
    wanted = _daemon_config(port)
    init = repo / "oneheart-init.json"
    init.write_text(json.dumps(wanted, indent=2) + "\n")
    config = repo / "config"
    if config.exists():
        current = json.loads(config.read_text())
        current.setdefault("Addresses", {}).update(wanted["Addresses"])
        current["Bootstrap"] = []
        discovery = current.setdefault("Discovery", {})
        discovery.update(wanted["Discovery"])
        tmp = config.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2) + "\n")
        tmp.replace(config)
    return init


def _daemons_using(repo: Path) -> list[int]:
    """Pids of live js-ipfs processes whose IPFS_PATH is ``repo`` (whatever the pid file says)."""
    marker = f"IPFS_PATH={repo}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "cmdline").read_bytes().startswith(PROGRAM.encode()):
                continue
            if marker in (proc / "environ").read_bytes().split(b"\0") and pid_alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _clear_stale_lock(repo: Path) -> None:
    """Remove what a killed daemon leaves behind (js-ipfs refuses to start while repo.lock
    exists); never while any daemon still uses the repo."""
    users = _daemons_using(repo)
    if users:
        raise RuntimeError(f"a js-ipfs daemon (pid {users[0]}) not started by us uses {repo}; stop it first")
    lock = repo / "repo.lock"
    if lock.is_dir() and not lock.is_symlink():
        shutil.rmtree(lock, ignore_errors=True)
    else:
        lock.unlink(missing_ok=True)
    (repo / "api").unlink(missing_ok=True)


def start_ipfs(data_dir: Path, port: int) -> str:
    """Start our own js-ipfs daemon for ``data_dir`` with its RPC API on 127.0.0.1:``port``; its URL."""
    running = our_port(data_dir)
    if running is not None:
        if running != port:
            raise RuntimeError(f"our ipfs daemon for {data_dir} already runs on port {running}, not {port}")
        return ipfs_url(port)
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is already taken by another program; pick another port")
    binary = install_ipfs()
    repo, pidfile, portfile, log = _files(data_dir)
    repo.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_lock(repo)
    init = _write_config(repo, port)
    cmd = [
        str(binary), "daemon",
        "--init-profile", "test",
        "--init-config", str(init),
        "--offline",
        "--enable-preload=false",
    ]  # fmt: skip
    env = {**os.environ, "IPFS_PATH": str(repo)}
    started = time.monotonic()
    with log.open("ab") as out:
        # Own session: the daemon outlives the command that started it.
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    pidfile.write_text(str(proc.pid))
    portfile.write_text(str(port))
    url = ipfs_url(port)

    def ready() -> bool:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-10:])
            raise RuntimeError(f"js-ipfs exited with code {proc.returncode}; see {log}:\n{tail}")
        return port_open("127.0.0.1", port) and _answers_id(url)

    try:
        wait_for(ready, START_TIMEOUT, f"js-ipfs on port {port} (log: {log})", interval=0.2)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        raise
    _say(f"js-ipfs started on {url} in {time.monotonic() - started:.1f}s")
    return url


def stop_ipfs(data_dir: Path) -> None:
    """Stop the js-ipfs daemon that ensure_ipfs started for ``data_dir``; never the machine's."""
    repo, pidfile, portfile, _log = _files(data_dir)
    pid = _our_pid(data_dir)
    if pid is not None:
        try:
            stop_pid(pid, "js-ipfs", STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            wait_for(lambda: not pid_alive(pid), 10, f"js-ipfs (pid {pid}) to die")
    with contextlib.suppress(RuntimeError):  # someone else's daemon on the repo keeps its lock
        _clear_stale_lock(repo)
    pidfile.unlink(missing_ok=True)
    portfile.unlink(missing_ok=True)
