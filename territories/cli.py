"""``oneheart registry|server|territory ...``: the registry's own schema, database servers and
territories; and :func:`run`, the runner every command that needs the database uses."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from core.cli import ACTOR, console, err, print_json, progress_bar, run_with
from core.errors import AppError
from core.routing import Router
from core.settings import get_settings
from territories.registry import Registry, open_router, territory_view

T = TypeVar("T")

server_app = typer.Typer(help="Database servers that hold territory schemas.", no_args_is_help=True)
territory_app = typer.Typer(help="Territories: create, inspect, suspend, migrate.", no_args_is_help=True)
registry_app = typer.Typer(help="The registry's own database (the global schema).", no_args_is_help=True)


def run(fn: Callable[[Router], Awaitable[T]]) -> T:
    """Run ``fn`` with the node's router; AppErrors become a one-line message and exit code 1."""
    return run_with(lambda: open_router(get_settings()), Router.close, fn)


def registry(router: Router) -> Registry:
    return Registry(router, ACTOR)


# --- registry ---------------------------------------------------------------------------
@registry_app.command("init")
def registry_init() -> None:
    """Create or upgrade the global schema (idempotent)."""
    from territories.migrate import upgrade_global

    run(lambda r: upgrade_global(r.registry))
    console.print("global schema is up to date")


# --- servers ----------------------------------------------------------------------------
@server_app.command("add")
def server_add(
    alias: str,
    dsn: Annotated[str, typer.Argument(help="postgresql://user[:password]@host:port/database")],
    region: Annotated[str, typer.Option(help="Where the server is (residency)")],
) -> None:
    """Register a database server. A password in the DSN is kept in the node's secrets, not the registry."""
    row = run(lambda r: registry(r).add_server(alias, dsn, region))
    console.print(f"server [bold]{row['alias']}[/bold] ({row['region']}): {row['dsn']}")


@server_app.command("list")
def server_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List database servers."""
    rows = run(lambda r: registry(r).list_servers())
    if as_json:
        print_json(rows)
        return
    table = Table("alias", "region", "status", "dsn (no password)")
    for r in rows:
        table.add_row(r["alias"], r["region"], r["status"], r["dsn"])
    console.print(table)


# --- territories ------------------------------------------------------------------------
@territory_app.command("create")
def territory_create(
    code: str,
    name: Annotated[str, typer.Option(help="Display name")],
    server: Annotated[str, typer.Option(help="Alias of the database server to hold it")],
    region: Annotated[str | None, typer.Option(help="Residency region (default: the server's)")] = None,
    homeserver: Annotated[str | None, typer.Option(help="Matrix homeserver name")] = None,
) -> None:
    """Create a territory: registry row, schema on its server, template migrations (idempotent)."""
    territory, created = run(
        lambda r: registry(r).create_territory(
            code, name, server, residency_region=region, matrix_homeserver=homeserver
        )
    )
    verb = "created" if created else "already exists:"
    console.print(f"territory [bold]{territory.code}[/bold] {verb} {territory.schema_name} on {territory.server_alias}")


@territory_app.command("import")
def territory_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header: code,name,server[,residency_region]", exists=True)],
    concurrency: Annotated[int | None, typer.Option(min=1, max=64, help="Parallel provisioning")] = None,
) -> None:
    """Create many territories from a CSV file (idempotent: existing ones are left as they are)."""
    import csv

    with file.open(newline="", encoding="utf-8") as fh:
        wanted = list(csv.DictReader(fh))
    missing = {"code", "name", "server"} - set(wanted[0] if wanted else {})
    if missing:
        err.print(f"[red]error[/red]: {file} needs the columns code,name,server (missing {', '.join(sorted(missing))})")
        raise typer.Exit(2)
    settings = get_settings()

    async def go(r: Router) -> tuple[int, int, list[str]]:
        gate = asyncio.Semaphore(concurrency or settings.registry.migrate_concurrency)
        created = existing = 0
        failures: list[str] = []
        with progress_bar("provisioning") as progress:
            task = progress.add_task("territories", total=len(wanted))

            async def one(row: dict[str, str]) -> None:
                nonlocal created, existing
                async with gate:
                    try:
                        _, new = await registry(r).create_territory(
                            row["code"].strip(),
                            row["name"].strip(),
                            row["server"].strip(),
                            residency_region=(row.get("residency_region") or "").strip() or None,
                        )
                        created, existing = created + new, existing + (not new)
                    except AppError as exc:
                        failures.append(f"{row.get('code')!r}: {exc.detail}")
                    progress.advance(task)

            await asyncio.gather(*(one(row) for row in wanted))
        return created, existing, failures

    created, existing, failures = run(go)
    for line in failures:
        err.print(f"[red]failed[/red] {escape(line)}")
    console.print(f"created {created}, already there {existing}, failed {len(failures)}")
    if failures:
        raise typer.Exit(1)


@territory_app.command("list")
def territory_list(
    status: Annotated[str | None, typer.Option(help="provisioning | active | suspended")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List every territory."""
    rows = run(lambda r: registry(r).all_territories(status))
    if as_json:
        print_json([territory_view(t) for t in rows])
        return
    table = Table("code", "name", "status", "server", "schema", "region")
    for t in rows:
        table.add_row(t.code, t.name, t.status, t.server_alias, t.schema_name, t.residency_region)
    console.print(table)
    console.print(f"{len(rows)} territories")


@territory_app.command("show")
def territory_show(code: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one territory."""
    view = territory_view(run(lambda r: registry(r).get_territory(code)))
    if as_json:
        print_json(view)
        return
    table = Table("field", "value", title=f"territory {code}")
    for key, value in view.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@territory_app.command("suspend")
def territory_suspend(code: str) -> None:
    """Suspend a territory: its API answers 423 until resumed."""
    t = run(lambda r: registry(r).set_status(code, "suspended"))
    console.print(f"territory {t.code} is {t.status}")


@territory_app.command("resume")
def territory_resume(code: str) -> None:
    """Resume a suspended territory."""
    t = run(lambda r: registry(r).set_status(code, "active"))
    console.print(f"territory {t.code} is {t.status}")


@territory_app.command("migrate")
def territory_migrate(
    codes: Annotated[list[str] | None, typer.Argument(help="Territories to migrate")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every registered territory")] = False,
    concurrency: Annotated[int | None, typer.Option(min=1, max=64, help="Parallel migrations")] = None,
    target: Annotated[str, typer.Option(help="Template revision")] = "head",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Upgrade territory schemas; up-to-date ones are skipped, a re-run resumes after failures."""
    from core.codes import check_code
    from territories.migrate import migrate_territories

    if not all_ and not codes:
        err.print("[red]error[/red]: name territories or pass --all")
        raise typer.Exit(2)
    settings = get_settings()

    async def go(r: Router) -> list[Any]:
        wanted = None
        if not all_:
            wanted = {check_code(c) for c in codes or []}
            missing = wanted - {p.code for p in await r.placements()}
            if missing:
                raise AppError(f"unknown territories: {', '.join(sorted(missing))}")
        with progress_bar("migrating", quiet=as_json) as progress:
            task = progress.add_task("territories", total=None)
            return await migrate_territories(
                r,
                wanted,
                target=target,
                concurrency=concurrency or settings.registry.migrate_concurrency,
                on_total=lambda n: progress.update(task, total=n),
                on_outcome=lambda _o: progress.advance(task),
            )

    outcomes = run(go)
    counts = {k: sum(1 for o in outcomes if o.status == k) for k in ("upgraded", "skipped", "failed")}
    if as_json:
        print_json({"counts": counts, "territories": [dataclasses.asdict(o) for o in outcomes]})
    else:
        table = Table("territory", "server", "from", "to", "result", "seconds", "error")
        for o in outcomes:
            if o.status != "skipped":
                colour = "green" if o.status == "upgraded" else "red"
                table.add_row(
                    o.code,
                    o.server,
                    o.before or "-",
                    o.after or "-",
                    f"[{colour}]{o.status}[/{colour}]",
                    f"{o.seconds:.2f}",
                    o.error or "",
                )
        if table.row_count:
            console.print(table)
        console.print(f"upgraded {counts['upgraded']}, up to date {counts['skipped']}, failed {counts['failed']}")
    if counts["failed"]:
        raise typer.Exit(1)
