"""PostgreSQL clusters for development and tests.

A cluster made here lives in one folder: ``data/`` (PGDATA), ``run/`` (its Unix socket) and
``postgres.log``. It listens on 127.0.0.1 only and trusts local connections, which is fine
for loopback development and never used in production.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devstack.system import apt_install, is_root, port_open, run, wait_for

PRIMARY_PORT = 5432
PRIMARY_FALLBACK_PORT = 55432
OS_USER = "postgres"
START_TIMEOUT = 60.0
_DB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def server_dsn(port: int, host: str = "127.0.0.1", dbname: str = "postgres") -> str:
    return f"postgresql://postgres@{host}:{port}/{dbname}"


def can_connect(dsn: str, timeout: int = 2) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _has_server_tools(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", folder.parent.name)) or (0,)


def _find_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = run([pg_config, "--bindir"])
        folder = Path(out.stdout.strip())
        if out.returncode == 0 and _has_server_tools(folder):
            return folder
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server_tools(p)]
    if candidates:
        return max(candidates, key=_version_key)
    return None


def pg_bindir() -> Path:
    """The folder holding initdb and pg_ctl; installs Debian's ``postgresql`` when there is none."""
    folder = _find_bindir()
    if folder is None:
        print("PostgreSQL server tools not found; installing Debian's postgresql", file=sys.stderr)
        apt_install("postgresql")
        folder = _find_bindir()
    if folder is None:
        raise RuntimeError("PostgreSQL server tools (initdb, pg_ctl) not found even after installing")
    return folder


def _as_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", OS_USER, "--", *cmd] if is_root() else cmd


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    result = run(_as_owner(cmd), cwd=cwd)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"{what} failed ({' '.join(cmd[:2])} ...):\n{tail}")
    return result


def _ensure_os_user() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        made = run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/bin/sh", OS_USER])
        if made.returncode != 0:
            raise RuntimeError(f"could not create the {OS_USER} OS user: {made.stderr.strip()}") from None
        entry = pwd.getpwnam(OS_USER)
    return entry.pw_uid, entry.pw_gid


def _can_search(folder: Path, uid: int, gids: set[int]) -> bool:
    st = folder.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, uid: int, gid: int) -> None:
    """Let the postgres OS user reach ``path`` when a parent folder is private to root.

    Only search permission, only for that user (an ACL), only on the folders that block it.
    """
    import grp
    import pwd

    user = pwd.getpwuid(uid).pw_name
    gids = {gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    blocking = [p for p in reversed(path.parents) if not _can_search(p, uid, gids)]
    if not blocking:
        return
    if shutil.which("setfacl") is None:
        apt_install("acl")
    for folder in blocking:
        result = run(["setfacl", "-m", f"u:{OS_USER}:x", str(folder)])
        if result.returncode != 0:
            raise PermissionError(
                f"the {OS_USER} OS user cannot reach {path}: {folder} is private "
                f"({result.stderr.strip()}); set OH_DATA_DIR to a folder outside it"
            )


def _prepare_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "run").mkdir(exist_ok=True)
    if not is_root():
        return
    uid, gid = _ensure_os_user()
    _grant_traverse(path, uid, gid)
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, uid, gid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, gid)


def running_port(path: Path) -> int | None:
    """The port of the cluster in ``path`` if its postmaster is alive, else None."""
    pidfile = path / "data" / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # After a crash the pid may belong to some other program by now.
    return port if b"postgres" in cmdline else None


def _initdb(bindir: Path, path: Path) -> None:
    locale = ["--locale=C.UTF-8"] if _has_c_utf8() else ["--no-locale"]
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(path / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            *locale,
        ],
        cwd=path,
        what=f"initdb in {path}",
    )


def _has_c_utf8() -> bool:
    try:
        out = run(["locale", "-a"])
    except FileNotFoundError:
        return False
    return any(name.lower() in {"c.utf8", "c.utf-8"} for name in out.stdout.split())


def ensure_cluster(path: Path, port: int) -> str:
    """Make sure a cluster in ``path`` runs on 127.0.0.1:``port``; return its server DSN.

    Idempotent: an already running cluster on that port is left alone.
    """
    path = Path(path).resolve()
    dsn = server_dsn(port)
    current = running_port(path)
    if current is not None:
        if current != port:
            raise RuntimeError(f"the cluster in {path} already runs on port {current}, not {port}")
        wait_for(lambda: can_connect(dsn), START_TIMEOUT, f"PostgreSQL in {path} on port {port}")
        return dsn
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is already taken by another program; pick another port")
    bindir = pg_bindir()
    _prepare_folder(path)
    if not (path / "data" / "PG_VERSION").exists():
        _initdb(bindir, path)
    socket_dir = path / "run"
    # Unix socket paths are limited to 107 bytes; we connect over TCP anyway.
    sockets = shlex.quote(str(socket_dir)) if len(str(socket_dir)) + len("/.s.PGSQL.65535") < 107 else "''"
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
    _run(
        [
            str(bindir / "pg_ctl"),
            "start",
            "-D",
            str(path / "data"),
            "-l",
            str(path / "postgres.log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            options,
        ],
        cwd=path,
        what=f"starting PostgreSQL in {path} (log: {path / 'postgres.log'})",
    )
    wait_for(lambda: can_connect(dsn), START_TIMEOUT, f"PostgreSQL in {path} on port {port}")
    return dsn


def stop_cluster(path: Path) -> None:
    """Stop the cluster in ``path`` (fast shutdown); nothing happens if it is not running."""
    path = Path(path).resolve()
    if running_port(path) is None:
        return
    _run(
        [str(pg_bindir() / "pg_ctl"), "stop", "-D", str(path / "data"), "-m", "fast", "-w"],
        cwd=path,
        what=f"stopping PostgreSQL in {path}",
    )


def database_dsn(server_dsn: str, name: str) -> str:
    """``server_dsn`` pointing at database ``name`` instead."""
    if "://" in server_dsn:
        parts = urlsplit(server_dsn)
        return urlunsplit(parts._replace(path=f"/{name}"))
    return make_conninfo(server_dsn, dbname=name)


def ensure_database(server_dsn: str, name: str) -> str:
    """Create database ``name`` on the server if missing; return a DSN pointing at it."""
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: must match {_DB_NAME.pattern}")
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another process
    return database_dsn(server_dsn, name)


def primary_path(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "postgres" / "a"


def ensure_primary(data_dir: Path) -> str:
    """The server DSN of the main PostgreSQL server.

    Reuses the machine's server on 127.0.0.1:5432 when user postgres can log in; otherwise
    runs our own cluster in ``data_dir/postgres/a`` on 5432 if free, else on 55432.
    """
    path = primary_path(data_dir)
    ours = running_port(path)
    if ours is not None:
        return ensure_cluster(path, ours)
    machine = server_dsn(PRIMARY_PORT)
    if port_open("127.0.0.1", PRIMARY_PORT) and can_connect(machine):
        return machine
    port = PRIMARY_PORT if not port_open("127.0.0.1", PRIMARY_PORT) else PRIMARY_FALLBACK_PORT
    return ensure_cluster(path, port)
