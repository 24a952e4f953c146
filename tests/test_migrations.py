"""``oneheart territory migrate --all`` over 200 territories on two servers."""

from __future__ import annotations

import asyncio
import json

from core.routing import Router
from territories.migrate import head
from territories.registry import Registry
from tests.conftest import Env, rows

N = 200


def report(env: Env) -> tuple[int, dict]:
    proc = env.cli("territory", "migrate", "--all", "--json", "--concurrency", "8", check=False)
    return proc.returncode, json.loads(proc.stdout)


async def test_migrate_all_200_skip_and_resume(env: Env, router: Router) -> None:
    codes = [f"mig_{i:03d}" for i in range(N)]
    gate = asyncio.Semaphore(8)

    async def provision(i: int, code: str) -> None:
        async with gate:
            # An older template revision, as if these territories predate the latest release.
            await Registry(router, "test").create_territory(code, f"Mig {i}", "a" if i % 2 else "b", target="t0001")

    await asyncio.gather(*(provision(i, c) for i, c in enumerate(codes)))
    broken = "mig_042"  # on server b
    assert rows(env.dsn_b, "SELECT version_num FROM territory_mig_042.alembic_version") == [("t0001",)]
    # Someone created a table by hand that the next revision also creates: its upgrade fails.
    rows_sql = "CREATE TABLE territory_mig_042.zones (id int); SELECT 1"
    rows(env.dsn_b, rows_sql)

    code, first = report(env)
    by_code = {t["code"]: t for t in first["territories"]}
    assert code == 1
    assert by_code[broken]["status"] == "failed"
    assert "zones" in by_code[broken]["error"]
    assert first["counts"]["upgraded"] == N - 1
    assert all(
        by_code[c]["status"] == "upgraded" and by_code[c]["after"] == head("territory") for c in codes if c != broken
    )
    # The failed territory rolled back to where it was.
    assert rows(env.dsn_b, "SELECT version_num FROM territory_mig_042.alembic_version") == [("t0001",)]
    assert rows(
        env.dsn_b, "SELECT count(*) FROM pg_tables WHERE schemaname = 'territory_mig_042' AND tablename = 'activity'"
    ) == [(0,)]

    # A second run has nothing to do for the others, and still reports the broken one.
    code, second = report(env)
    assert code == 1
    assert second["counts"] == {"upgraded": 0, "skipped": len(second["territories"]) - 1, "failed": 1}

    # Fixed by hand: the next run resumes and upgrades only that territory.
    rows(env.dsn_b, "DROP TABLE territory_mig_042.zones; SELECT 1")
    code, third = report(env)
    assert code == 0
    assert third["counts"]["upgraded"] == 1 and third["counts"]["failed"] == 0
    assert [t["code"] for t in third["territories"] if t["status"] == "upgraded"] == [broken]
    assert rows(env.dsn_b, "SELECT version_num FROM territory_mig_042.alembic_version") == [(head("territory"),)]

    # Human-readable report, too.
    human = env.cli("territory", "migrate", "--all")
    assert "upgraded 0" in human.stdout and "failed 0" in human.stdout
