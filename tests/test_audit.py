"""Every privileged change records who made it in ``global.audit_log``: the registry API (a
real global admin as ``user:<id>``, the bootstrap token as ``admin-token``), role grants and
revokes, identity-provider and app settings, and policy changes (with before and after)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, Env, Node, rows

POLICY_TERRITORY = "audit_pol"


def audit_rows(env: Env, target: str, since: int = 0) -> list[tuple[Any, ...]]:
    return rows(
        env.dsn_a,
        "SELECT actor, action, details FROM global.audit_log WHERE target = %s AND id > %s ORDER BY id",
        target,
        since,
    )


def last_audit_id(env: Env) -> int:
    return int(rows(env.dsn_a, "SELECT coalesce(max(id), 0) FROM global.audit_log")[0][0])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def policy_territory(env: Env) -> Iterator[str]:
    env.cli("territory", "create", POLICY_TERRITORY, "--name", "Audited policies", "--server", "b")
    yield POLICY_TERRITORY


async def test_registry_api_records_the_real_admin_and_the_bootstrap_token(env: Env, node: Node) -> None:
    admin_id = uuid.uuid4()
    admin = node.auth(roles={"*": ["global_admin"]}, user_id=admin_id)
    bootstrap = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with node.client(anonymous=True) as c:
        created = await c.post(
            "/api/registry/territories", headers=admin, json={"code": "audit_api", "name": "Audit", "server": "b"}
        )
        assert created.status_code in (200, 201), created.text
        since = last_audit_id(env)
        suspended = await c.post("/api/registry/territories/audit_api/suspend", headers=admin)
        assert suspended.status_code == 200, suspended.text
        resumed = await c.post("/api/registry/territories/audit_api/resume", headers=bootstrap)
        assert resumed.status_code == 200, resumed.text
    everything = [(actor, action) for actor, action, _ in audit_rows(env, "audit_api")]
    assert (f"user:{admin_id}", "territory.create") in everything
    assert [(actor, action) for actor, action, _ in audit_rows(env, "audit_api", since)] == [
        (f"user:{admin_id}", "territory.suspended"),
        ("admin-token", "territory.resumed"),
    ]


async def test_role_grants_and_revokes_are_audited(env: Env, node: Node) -> None:
    person = uuid.uuid4()
    rows(
        env.dsn_a,
        "INSERT INTO global.users (id, issuer, subject, home_territory) VALUES (%s, 'https://idp.example', %s, 'dk')",
        person,
        str(person),
    )
    target = f"user:{person}"
    env.cli("auth", "grant", str(person), "moderator", "--territory", "dk")
    env.cli("auth", "grant", str(person), "moderator", "--territory", "dk")  # already had it: no change
    env.cli("auth", "grant", str(person), "sponsor")
    assert rows(env.dsn_a, "SELECT granted_by FROM global.role_assignments WHERE user_id = %s", person) == [
        ("cli",),
        ("cli",),
    ]
    env.cli("auth", "revoke", str(person), "moderator", "--territory", "dk")
    env.cli("auth", "revoke", str(person), "moderator", "--territory", "dk")  # nothing left to take
    env.cli("auth", "revoke", str(person), "sponsor")
    assert audit_rows(env, target) == [
        ("cli", "role.grant", {"role": "moderator", "scope": "dk"}),
        ("cli", "role.grant", {"role": "sponsor", "scope": "*"}),
        ("cli", "role.revoke", {"role": "moderator", "scope": "dk"}),
        ("cli", "role.revoke", {"role": "sponsor", "scope": "*"}),
    ]


async def test_provider_and_app_settings_are_audited(env: Env, node: Node, policy_territory: str) -> None:
    client = f"audit-{uuid.uuid4().hex[:6]}"
    env.cli("auth", "add-app", client, "--name", "Audited", "--redirect-uri", "http://127.0.0.1:9/cb")
    assert audit_rows(env, client) == [
        ("cli", "auth.app.set", {"name": "Audited", "redirect_uris": ["http://127.0.0.1:9/cb"]})
    ]
    env.cli(
        "auth",
        "set-provider",
        policy_territory,
        "--issuer",
        "https://idp.example/realm",
        "--client-id",
        "node",
        "--client-secret-stdin",
        stdin="not-in-the-log-please\n",
    )
    [(actor, action, details)] = [r for r in audit_rows(env, policy_territory) if r[1] == "auth.provider.set"]
    assert (actor, action) == ("cli", "auth.provider.set")
    assert details == {
        "issuer": "https://idp.example/realm",
        "client_id": "node",
        "scopes": ["openid", "profile"],
        "client_secret": True,
    }
    assert "not-in-the-log-please" not in json.dumps(details)


@pytest.mark.parametrize(
    ("command", "key", "change", "field", "value"),
    [
        (["verification", "policy"], "verification", ["--reject-max", "15"], "reject_max", 15),
        (["social", "policy"], "social", ["--min-witnesses", "3"], "min_witnesses", 3),
        (["impact", "policy"], "impact", ["--set", '{"streak_cap": 1.25}'], "streak_cap", 1.25),
    ],
)
async def test_policy_changes_are_audited_with_before_and_after(
    env: Env, policy_territory: str, command: list[str], key: str, change: list[str], field: str, value: object
) -> None:
    since = last_audit_id(env)
    env.cli(*command, policy_territory)  # reading changes nothing
    env.cli(*command, policy_territory, *change)
    env.cli(*command, policy_territory, *change)  # the same again: no change, no row
    found = [r for r in audit_rows(env, policy_territory, since) if r[1] == "policy.set"]
    assert len(found) == 1, found
    actor, _, details = found[0]
    assert actor == "cli" and details["policy"] == key
    assert details["before"][field] != value and details["after"][field] == value
    assert {k: v for k, v in details["after"].items() if k != field} == {
        k: v for k, v in details["before"].items() if k != field
    }
