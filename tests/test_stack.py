"""The local stack against real servers: a PostgreSQL cluster of our own, NATS, Redis, IPFS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from devstack.cli import read_stack_env, stack_app
from typer.testing import CliRunner

from devstack import ipfs, nats, postgres, redis, system
from tests.stackfixtures import start_second_server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    dsn, path = start_second_server(tmp_path_factory)
    yield dsn, path
    postgres.stop_cluster(path)


def _port(dsn: str) -> int:
    return int(dsn.rsplit(":", 1)[1].split("/")[0])


def _postmaster_pid(path: Path) -> int:
    return int((path / "data" / "postmaster.pid").read_text().splitlines()[0])


def test_cluster_is_a_real_server_on_loopback(cluster: tuple[str, Path]) -> None:
    dsn, path = cluster
    assert dsn == f"postgresql://postgres@127.0.0.1:{_port(dsn)}/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL")
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('port', 'listen_addresses', 'max_connections', 'server_encoding')"
            ).fetchall()
        )
        shown = conn.execute("SHOW port").fetchone()
    assert shown is not None and int(shown[0]) == _port(dsn)
    assert settings == {
        "port": str(_port(dsn)),
        "listen_addresses": "127.0.0.1",
        "max_connections": "200",
        "server_encoding": "UTF8",
    }
    assert postgres.running_port(path) == _port(dsn)
    assert (path / "postgres.log").exists()


def test_ensure_cluster_again_is_a_no_op(cluster: tuple[str, Path]) -> None:
    dsn, path = cluster
    pid = _postmaster_pid(path)
    assert postgres.ensure_cluster(path, _port(dsn)) == dsn
    assert _postmaster_pid(path) == pid


def test_ensure_cluster_refuses_a_second_port(cluster: tuple[str, Path]) -> None:
    _dsn, path = cluster
    with pytest.raises(RuntimeError, match="already runs on port"):
        postgres.ensure_cluster(path, system.free_port())


def test_ensure_cluster_refuses_a_taken_port(tmp_path: Path, cluster: tuple[str, Path]) -> None:
    dsn, _path = cluster
    with pytest.raises(RuntimeError, match="already taken"):
        postgres.ensure_cluster(tmp_path / "other", _port(dsn))
    assert not (tmp_path / "other" / "data").exists()


def test_ensure_database_is_idempotent(cluster: tuple[str, Path]) -> None:
    dsn, _path = cluster
    first = postgres.ensure_database(dsn, "oh_stack_test")
    second = postgres.ensure_database(dsn, "oh_stack_test")
    assert first == second == f"postgresql://postgres@127.0.0.1:{_port(dsn)}/oh_stack_test"
    with psycopg.connect(first) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("oh_stack_test",)
        count = conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'oh_stack_test'").fetchone()
    assert count == (1,)


@pytest.mark.parametrize("name", ["x; drop database postgres", "Upper", "1abc", "", "a" * 64, 'a"b', "has space", "é"])
def test_ensure_database_rejects_bad_names_before_connecting(name: str) -> None:
    # Nothing listens there: a connection attempt would raise OperationalError, not ValueError.
    nowhere = f"postgresql://postgres@127.0.0.1:{system.free_port()}/postgres"
    with pytest.raises(ValueError, match="invalid database name"):
        postgres.ensure_database(nowhere, name)


def test_database_dsn_keeps_the_server_part() -> None:
    assert (
        postgres.database_dsn("postgresql://u:pw@db.internal:6432/postgres?sslmode=require", "oneheart")
        == "postgresql://u:pw@db.internal:6432/oneheart?sslmode=require"
    )
    assert "dbname=oneheart" in postgres.database_dsn("host=127.0.0.1 port=5432 dbname=postgres", "oneheart")


def test_stop_cluster_then_restart_keeps_data(cluster: tuple[str, Path]) -> None:
    dsn, path = cluster
    port = _port(dsn)
    postgres.stop_cluster(path)
    assert not system.port_open("127.0.0.1", port)
    assert postgres.running_port(path) is None
    postgres.stop_cluster(path)  # not running: no error
    assert postgres.ensure_cluster(path, port) == dsn
    with psycopg.connect(postgres.database_dsn(dsn, "oh_stack_test")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_ensure_primary_reuses_or_starts(tmp_path: Path) -> None:
    machine = postgres.server_dsn(5432)
    machine_up = postgres.can_connect(machine)
    try:
        dsn = postgres.ensure_primary(tmp_path)
        assert postgres.can_connect(dsn)
        if machine_up:
            assert dsn == machine
            assert not (tmp_path / "postgres").exists()
        else:
            assert postgres.running_port(postgres.primary_path(tmp_path)) == _port(dsn)
    finally:
        postgres.stop_cluster(postgres.primary_path(tmp_path))


def test_ensure_nats_reuses_the_machines_jetstream(tmp_path: Path) -> None:
    machine_up = nats.jetstream_ready("nats://127.0.0.1:4222")
    try:
        url = nats.ensure_nats(tmp_path)
        assert nats.jetstream_ready(url)
        if machine_up:
            assert url == "nats://127.0.0.1:4222"
            assert nats.our_port(tmp_path) is None
    finally:
        nats.stop_nats(tmp_path)


def test_ensure_redis_reuses_the_machines_redis(tmp_path: Path) -> None:
    machine_up = redis.answers("redis://127.0.0.1:6379/0")
    try:
        url = redis.ensure_redis(tmp_path)
        assert redis.answers(url)
        if machine_up:
            assert url == "redis://127.0.0.1:6379/0"
            assert redis.our_port(tmp_path) is None
    finally:
        redis.stop_redis(tmp_path)


def test_own_nats_and_redis_start_and_stop(tmp_path: Path) -> None:
    nats_port, redis_port = system.free_port(), system.free_port()
    try:
        nats_url = nats.start_nats(tmp_path, nats_port)
        redis_url = redis.start_redis(tmp_path, redis_port)
        assert nats.jetstream_ready(nats_url)
        assert redis.answers(redis_url)
        assert (nats.our_port(tmp_path), redis.our_port(tmp_path)) == (nats_port, redis_port)
        assert nats.ensure_nats(tmp_path) == nats_url  # ours is found again
        assert redis.ensure_redis(tmp_path) == redis_url
    finally:
        nats.stop_nats(tmp_path)
        redis.stop_redis(tmp_path)
    assert not system.port_open("127.0.0.1", nats_port)
    assert not system.port_open("127.0.0.1", redis_port)
    nats.stop_nats(tmp_path)  # nothing of ours: no error
    redis.stop_redis(tmp_path)


def test_system_helpers() -> None:
    port = system.free_port()
    assert not system.port_open("127.0.0.1", port)
    with pytest.raises(TimeoutError, match="the moon"):
        system.wait_for(lambda: False, 0.2, "the moon")
    system.wait_for(lambda: True, 0.1, "at once")
    assert system.redact_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert system.redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_cli_up_minimal_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OH_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    try:
        result = runner.invoke(stack_app, ["up", "--minimal"])
        assert result.exit_code == 0, result.output
        env = read_stack_env(tmp_path)
        assert set(env) == {"OH_REGISTRY_DSN", "OH_NATS_URL", "OH_REDIS_URL", "OH_IPFS_URL"}
        assert ipfs.is_ipfs(env["OH_IPFS_URL"])
        assert env["OH_REGISTRY_DSN"].endswith("/oneheart")
        assert (tmp_path / "stack.env").stat().st_mode & 0o077 == 0
        status = runner.invoke(stack_app, ["status"])
        assert status.exit_code == 0, status.output
        assert status.output.count(" up ") == 4
    finally:
        result = runner.invoke(stack_app, ["down"])
    assert result.exit_code == 0, result.output
