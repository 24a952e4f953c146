"""Operations: health, readiness per backing service, metrics, request ids, JSON logs,
and a database server that goes down while others keep working."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from devstack.postgres import ensure_cluster, ensure_database, stop_cluster
from devstack.system import free_port

from core.routing import Router
from territories.registry import Registry
from tests.conftest import Env, Node, rows, start_node


async def test_health_ready_metrics(node: Node) -> None:
    async with node.client() as c:
        assert (await c.get("/health")).json() == {"status": "ok"}
        ready = await c.get("/ready")
        assert ready.status_code == 200, ready.text
        checks = {ch["name"]: ch for ch in ready.json()["checks"]}
        assert {"postgres:registry", "postgres:a", "postgres:b", "nats", "redis"} <= set(checks)
        assert all(ch["ok"] and ch["ms"] >= 0 for ch in checks.values())
        async with node.client("dk") as dk:
            await dk.get("/api/zones")
        metrics = (await c.get("/metrics")).text
        assert "oh_requests_total" in metrics or "oh_request" in metrics
        assert 'path="/api/zones"' in metrics
        docs = await c.get("/docs/openapi.json")
        assert docs.status_code == 200 and "/api/zones" in docs.json()["paths"]
        assert (await c.get("/docs")).status_code == 200


async def test_request_id_and_territory_in_json_logs(node: Node) -> None:
    async with node.client("dk") as c:
        r = await c.get("/api/zones", headers={"X-Request-ID": "trace-abc.123"})
        assert r.headers["x-request-id"] == "trace-abc.123"
        generated = (await c.get("/api/zones", headers={"X-Request-ID": "bad id with spaces"})).headers["x-request-id"]
        assert generated != "bad id with spaces" and len(generated) == 32
    lines = [json.loads(line) for line in node.proc.log_text().splitlines() if line.startswith("{")]
    ours = [x for x in lines if x.get("request_id") == "trace-abc.123"]
    assert ours and ours[-1]["territory"] == "dk" and ours[-1]["status"] == 200 and ours[-1]["path"] == "/api/zones"


async def test_error_never_leaks_a_stack_trace(node: Node) -> None:
    async with node.client() as c:
        r = await c.get("/no/such/route")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "detail"}


async def test_server_down_is_503_while_other_territories_work(env: Env, router: Router, tmp_path: Path) -> None:
    path, port = tmp_path / "pg-c", free_port()
    server = ensure_cluster(path, port)
    dsn_c = ensure_database(server, "oneheart")
    await Registry(router, "test").add_server("c", dsn_c, "eu-south")
    await Registry(router, "test").create_territory("it", "Italia", "c")
    node = start_node(env, tmp_path / "node.log")
    try:
        async with node.client("it") as it, node.client("dk") as dk:
            r = await it.post("/api/zones", json={"name": "Roma", "lat": 41.9, "lng": 12.5, "radius_m": 900})
            assert r.status_code == 201
            stop_cluster(path)
            down = await it.get("/api/zones")
            assert down.status_code == 503
            assert down.json()["error"] == "unavailable"
            assert int(down.headers["retry-after"]) > 0
            write = await it.post("/api/zones", json={"name": "Milano", "lat": 45.4, "lng": 9.2, "radius_m": 900})
            assert write.status_code == 503
            assert (await dk.get("/api/zones")).status_code == 200
            ready = await it.get("/ready")
            assert ready.status_code == 503
            assert {c["name"]: c["ok"] for c in ready.json()["checks"]}["postgres:c"] is False
            ensure_cluster(path, port)
            back = await it.get("/api/zones")
            if back.status_code == 503:  # the pool notices the restart on first use
                back = await it.get("/api/zones")
            assert back.status_code == 200
            assert [z["name"] for z in back.json()["items"]] == ["Roma"]
        assert rows(dsn_c, "SELECT count(*) FROM territory_it.zones") == [(1,)]
    finally:
        node.proc.kill(signal.SIGTERM)
        stop_cluster(path)


def test_openapi_document_is_current() -> None:
    from node.app import openapi_document

    committed = Path(__file__).resolve().parent.parent / "schemas" / "openapi.json"
    assert committed.read_text().strip() == openapi_document().strip(), "run: oneheart openapi export"


async def test_cli_help_lists_the_commands(env: Env) -> None:
    out = env.cli("--help").stdout
    for command in ("serve", "worker", "server", "territory", "registry", "stack"):
        assert command in out
    assert "--concurrency" in env.cli("territory", "migrate", "--help").stdout
