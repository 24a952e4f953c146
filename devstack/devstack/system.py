"""Small operating-system helpers shared by the stack modules."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_apt_updated = False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until it is true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def is_root() -> bool:
    return os.geteuid() == 0


def _privileged(cmd: list[str]) -> list[str]:
    if is_root():
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "-n", *cmd] if not sys.stdin.isatty() else ["sudo", *cmd]
    raise PermissionError(f"installing packages needs root and sudo is not available; run as root: {' '.join(cmd)}")


def apt_install(*packages: str) -> None:
    """Install Debian packages (``apt-get update`` once per process first)."""
    global _apt_updated
    if not packages:
        return
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"apt-get not found: install {' '.join(packages)} with your system's package manager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _run_apt(_privileged(["apt-get", "update"]), env, packages)
        _apt_updated = True
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    _run_apt(_privileged(cmd), env, packages)


def _run_apt(cmd: list[str], env: dict[str, str], packages: Sequence[str]) -> None:
    result = run(cmd, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"could not install {' '.join(packages)}: {' '.join(cmd)} failed:\n{tail}")


def run(
    cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program with fixed arguments (never a shell), capturing its output as text."""
    program = cmd[0] if os.path.isabs(cmd[0]) else find_program(cmd[0])
    if program is None:
        raise FileNotFoundError(f"program not found: {cmd[0]}")
    return subprocess.run(  # noqa: S603 - arguments are built here, never a shell
        [program, *cmd[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def find_program(name: str, *extra_dirs: str) -> str | None:
    """``name`` on PATH, or in one of ``extra_dirs`` (Debian puts servers in /usr/sbin)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in (*extra_dirs, "/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def read_pid(pidfile: Path, program: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and runs ``program``; else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # A recycled pid belongs to some other program: treat ours as gone.
    return pid if program.encode() in cmdline else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop_pid(pid: int, what: str, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` and wait until it is gone."""
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    wait_for(lambda: not pid_alive(pid), timeout, f"{what} (pid {pid}) to stop")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable address>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def server_binary(program: str, package: str) -> str:
    """Path of ``program``; installs Debian's ``package`` when it is missing."""
    binary = find_program(program)
    if binary is None:
        print(f"{program} not found; installing Debian's {package}", file=sys.stderr)
        apt_install(package)
        binary = find_program(program)
    if binary is None:
        raise RuntimeError(f"{program} not found even after installing Debian's {package}")
    return binary


def reuse_or_start(
    *,
    what: str,
    ours: int | None,
    url_for: Callable[[int], str],
    healthy: Callable[[str], bool],
    default_port: int,
    fallback_port: int,
    start: Callable[[int], str],
    timeout: float = 20.0,
) -> str:
    """The URL of a service: the one we started before, else the machine's on its default
    port when it is healthy, else a new one of ours on the default, fallback or a free port."""
    if ours is not None:
        url = url_for(ours)
        wait_for(lambda: healthy(url), timeout, f"{what} on port {ours}")
        return url
    machine = url_for(default_port)
    if port_open("127.0.0.1", default_port) and healthy(machine):
        return machine
    port = default_port
    if port_open("127.0.0.1", port):
        port = fallback_port if not port_open("127.0.0.1", fallback_port) else free_port()
    return start(port)
