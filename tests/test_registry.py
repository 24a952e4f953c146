"""The registry through its CLI and its admin API."""

from __future__ import annotations

import json
import stat

import pytest

from core.routing import Router
from tests.conftest import ADMIN_TOKEN, Env, Node, Proc, eventually, rows

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_cli_servers_and_territories(env: Env, router: Router) -> None:
    out = env.cli("server", "list", "--json")
    servers = {s["alias"]: s for s in json.loads(out.stdout)}
    assert servers["a"]["region"] == "eu-north" and servers["b"]["region"] == "eu-west"
    # Idempotent: the same add again is fine; other settings for the same alias are refused.
    env.cli("server", "add", "b", env.dsn_b, "--region", "eu-west")
    clash = env.cli("server", "add", "b", env.dsn_a, "--region", "eu-west", check=False)
    assert clash.returncode == 1 and "already exists" in clash.stderr

    env.cli("territory", "create", "kl", "--name", "Kalaallit Nunaat", "--server", "b")
    again = env.cli("territory", "create", "kl", "--name", "Kalaallit Nunaat", "--server", "b")
    assert "already exists" in again.stdout
    shown = json.loads(env.cli("territory", "show", "kl", "--json").stdout)
    assert shown | {"settings": {}} == shown and shown["schema"] == "territory_kl" and shown["server"] == "b"
    assert shown["status"] == "active" and shown["residency_region"] == "eu-west"
    assert rows(env.dsn_b, "SELECT count(*) FROM pg_namespace WHERE nspname = 'territory_kl'") == [(1,)]
    listed = json.loads(env.cli("territory", "list", "--json").stdout)
    assert "kl" in {t["code"] for t in listed}

    env.cli("territory", "suspend", "kl")
    assert json.loads(env.cli("territory", "show", "kl", "--json").stdout)["status"] == "suspended"
    env.cli("territory", "resume", "kl")
    assert json.loads(env.cli("territory", "show", "kl", "--json").stdout)["status"] == "active"
    audit = rows(env.dsn_a, "SELECT action FROM global.audit_log WHERE target = 'kl' ORDER BY id")
    assert [a for (a,) in audit] == ["territory.create", "territory.suspended", "territory.resumed"]


@pytest.mark.parametrize("code", ["x'; drop schema global cascade; --", "Robert'); DROP TABLE", "UPPER", "global"])
async def test_cli_rejects_bad_codes_before_any_sql(env: Env, router: Router, code: str) -> None:
    before = rows(env.dsn_a, "SELECT count(*) FROM global.territories")
    proc = env.cli("territory", "create", code, "--name", "X", "--server", "a", check=False)
    assert proc.returncode == 1
    assert "territory code" in proc.stderr
    assert rows(env.dsn_a, "SELECT count(*) FROM global.territories") == before
    assert rows(env.dsn_a, "SELECT count(*) FROM pg_namespace WHERE nspname = 'global'") == [(1,)]


async def test_cli_unknown_server_and_territory(env: Env, router: Router) -> None:
    proc = env.cli("territory", "create", "zz", "--name", "Z", "--server", "nowhere", check=False)
    assert proc.returncode == 1 and "unknown database server" in proc.stderr
    proc = env.cli("territory", "show", "nope", check=False)
    assert proc.returncode == 1 and "unknown territory" in proc.stderr


async def test_password_stays_out_of_the_registry(env: Env, router: Router) -> None:
    rows(
        env.dsn_b,
        "DO $$ BEGIN CREATE ROLE oh_app LOGIN PASSWORD 's3cret-pw'; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$; SELECT 1",
    )
    rows(env.dsn_b, "GRANT ALL ON DATABASE oneheart TO oh_app; SELECT 1")
    port = env.dsn_b.split(":")[-1].split("/")[0]
    env.cli("server", "add", "b-app", f"postgresql://oh_app:s3cret-pw@127.0.0.1:{port}/oneheart", "--region", "eu-west")
    stored = rows(env.dsn_a, "SELECT dsn FROM global.db_servers WHERE alias = 'b-app'")[0][0]
    assert "s3cret" not in str(stored) and "oh_app@" in str(stored)
    listed = env.cli("server", "list", "--json").stdout
    assert "s3cret" not in listed
    secrets_file = env.data_dir / "secrets" / "db_servers.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert json.loads(secrets_file.read_text())["b-app"] == "s3cret-pw"


async def test_admin_api(node: Node) -> None:
    async with node.client(anonymous=True) as c:
        assert (await c.get("/api/registry/territories")).status_code == 401
        wrong = await c.get("/api/registry/territories", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        page = (await c.get("/api/registry/territories", headers=ADMIN, params={"limit": 2})).json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        nxt = (
            await c.get("/api/registry/territories", headers=ADMIN, params={"limit": 2, "cursor": page["next_cursor"]})
        ).json()
        assert page["items"][-1]["code"] < nxt["items"][0]["code"]
        servers = (await c.get("/api/registry/servers", headers=ADMIN)).json()
        assert {"a", "b"} <= {s["alias"] for s in servers}
        assert (await c.get("/api/registry/territories/dk", headers=ADMIN)).json()["server"] == "a"
        assert (await c.get("/api/registry/territories/nope", headers=ADMIN)).status_code == 404
        assert (await c.get("/api/registry/territories/NOPE", headers=ADMIN)).status_code == 400

        body = {"code": "fo", "name": "Føroyar", "server": "b"}
        created = await c.post("/api/registry/territories", headers=ADMIN, json=body)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "active"
        assert (await c.post("/api/registry/territories", headers=ADMIN, json=body)).status_code == 200
        clash = await c.post("/api/registry/territories", headers=ADMIN, json={**body, "server": "a"})
        assert clash.status_code == 409
        bad = await c.post("/api/registry/territories", headers=ADMIN, json={**body, "code": "x'--"})
        assert bad.status_code == 400
        nosrv = await c.post("/api/registry/territories", headers=ADMIN, json={**body, "code": "gl", "server": "zz"})
        assert nosrv.status_code == 404
        async with node.client("fo") as fo:
            assert (await fo.get("/api/zones")).status_code == 200


async def test_cli_suspension_reaches_a_running_node_through_nats(env: Env, node: Node, worker: Proc) -> None:
    """The node caches registry lookups for 300 s here; only the registry event can clear it."""
    env.cli("territory", "create", "nu", "--name", "Nunavut", "--server", "b")
    async with node.client("nu") as c:
        assert (await c.get("/api/zones")).status_code == 200
        env.cli("territory", "suspend", "nu")

        async def locked() -> bool:
            return (await c.get("/api/zones")).status_code == 423

        async def open_again() -> bool:
            return (await c.get("/api/zones")).status_code == 200

        try:
            await eventually(locked, timeout=30)
            env.cli("territory", "resume", "nu")
            await eventually(open_again, timeout=30)
        except AssertionError as exc:
            logs = f"worker:\n{worker.log_text()[-3000:]}\nnode:\n{node.proc.log_text()[-2000:]}"
            raise AssertionError(f"{exc}\n{logs}") from None


def test_blank_or_short_admin_token_never_authenticates() -> None:
    from pydantic import ValidationError

    from core.settings import AuthSettings

    assert AuthSettings(admin_token="").admin_token is None
    assert AuthSettings(admin_token="   ").admin_token is None
    with pytest.raises(ValidationError, match="at least 16"):
        AuthSettings(admin_token="short")


async def test_empty_bearer_is_refused(node: Node) -> None:
    async with node.client(anonymous=True) as c:
        for header in ("Bearer", "Bearer x", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN, f"Bearer {ADMIN_TOKEN}x"):
            r = await c.get("/api/registry/servers", headers={"Authorization": header})
            assert r.status_code == 401, header


def test_env_example_lists_every_setting() -> None:
    from pathlib import Path

    from core.settings import env_names

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    for name in env_names():
        assert f"{name}=" in text, f"{name} missing from .env.example"


async def test_territory_show_speaks_json_like_list(env: Env, router: Router) -> None:
    """`territory show CODE --json` gives the same record as `territory list --json`; without
    it, a table for people (as `list` and `server list` do)."""
    listed = {t["code"]: t for t in json.loads(env.cli("territory", "list", "--json").stdout)}
    shown = json.loads(env.cli("territory", "show", "dk", "--json").stdout)
    assert shown == listed["dk"]
    table = env.cli("territory", "show", "dk").stdout
    assert "territory_dk" in table and not table.lstrip().startswith("{")
    missing = env.cli("territory", "show", "zz_none", "--json", check=False)
    assert missing.returncode == 1 and "unknown territory" in missing.stderr
