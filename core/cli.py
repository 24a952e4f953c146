"""The ``oneheart`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import AppError
from core.settings import get_settings
from territories import registry
from territories.routing import Router

app = typer.Typer(
    help="OneHeart node: serve the API, run workers, manage the territory registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(help="Database servers that hold territory schemas.", no_args_is_help=True)
territory_app = typer.Typer(help="Territories: create, inspect, suspend, migrate.", no_args_is_help=True)
registry_app = typer.Typer(help="The registry's own database (the global schema).", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
app.add_typer(server_app, name="server")
app.add_typer(territory_app, name="territory")
app.add_typer(registry_app, name="registry")
app.add_typer(openapi_app, name="openapi")
try:
    from core.stack.cli import stack_app

    app.add_typer(stack_app, name="stack", help="Start, inspect or stop the local stack (Postgres, NATS, Redis).")
except ImportError:  # pragma: no cover - the stack module is optional in slim images
    pass

console = Console()
err = Console(stderr=True)
T = TypeVar("T")
ACTOR = "cli"


def given(**options: Any) -> dict[str, Any]:
    """The options the user passed (typer gives ``None`` for the others)."""
    return {name: value for name, value in options.items() if value is not None}


def show_settings(values: Any, title: str) -> None:
    """A struct of settings (a territory policy, ...) as a two-column table."""
    import msgspec

    table = Table("setting", "value", title=title)
    for key, value in msgspec.to_builtins(values).items():
        shown = str(value).lower() if isinstance(value, bool) else f"{value:.4g}" if isinstance(value, float) else value
        table.add_row(key, str(shown))
    console.print(table)


def run(fn: Callable[[Router], Awaitable[T]]) -> T:
    """Run ``fn`` with a router; AppErrors become a one-line message and exit code 1."""

    async def main() -> T:
        router = Router(get_settings())
        try:
            return await fn(router)
        finally:
            await router.close()

    try:
        return asyncio.run(main())
    except AppError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {escape(exc.detail)}")
        raise typer.Exit(1) from None


def progress_bar(label: str, *, quiet: bool = False) -> Progress:
    """A progress bar on stderr, shown only on a terminal."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
    )


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --- serve / worker ---------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OH_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OH_HTTP_PORT)")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated services to mount (default: all)")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from core.app import create_app

    settings = get_settings()
    try:
        application = create_app(settings, only=[s.strip() for s in only.split(",")] if only else None)
    except ValueError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=host or settings.http_host,
        port=port or settings.http_port,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


@app.command()
def worker(
    relay: Annotated[bool, typer.Option(help="Run the outbox relay")] = True,
    consumers: Annotated[bool, typer.Option(help="Run the event consumers")] = True,
    consumer: Annotated[list[str] | None, typer.Option(help="Run only this consumer (repeatable)")] = None,
) -> None:
    """Run the outbox relay and the event consumers."""
    from core.worker import run_worker

    names = consumer if consumers and consumer else ([] if not consumers else None)
    try:
        asyncio.run(run_worker(get_settings(), relay=relay, consumer_names=names))
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}")
        raise typer.Exit(2) from None


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
    row = run(lambda r: registry.add_server(r, alias, dsn, region, actor=ACTOR))
    console.print(f"server [bold]{row['alias']}[/bold] ({row['region']}): {row['dsn']}")


@server_app.command("list")
def server_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List database servers."""
    rows = run(registry.list_servers)
    if as_json:
        _json(rows)
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
        lambda r: registry.create_territory(
            r, code, name, server, actor=ACTOR, residency_region=region, matrix_homeserver=homeserver
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
        gate = asyncio.Semaphore(concurrency or settings.migrate_concurrency)
        created = existing = 0
        failures: list[str] = []
        with progress_bar("provisioning") as progress:
            task = progress.add_task("territories", total=len(wanted))

            async def one(row: dict[str, str]) -> None:
                nonlocal created, existing
                async with gate:
                    try:
                        _, new = await registry.create_territory(
                            r,
                            row["code"].strip(),
                            row["name"].strip(),
                            row["server"].strip(),
                            actor=ACTOR,
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

    async def all_rows(r: Router) -> list[Any]:
        out, cursor = [], None
        while True:
            rows, cursor = await registry.list_territories(r, limit=500, cursor=cursor, status=status)
            out.extend(rows)
            if cursor is None:
                return out

    rows = run(all_rows)
    if as_json:
        _json([registry.territory_view(t) for t in rows])
        return
    table = Table("code", "name", "status", "server", "schema", "region")
    for t in rows:
        table.add_row(t.code, t.name, t.status, t.server_alias, t.schema_name, t.residency_region)
    console.print(table)
    console.print(f"{len(rows)} territories")


@territory_app.command("show")
def territory_show(code: str) -> None:
    """Show one territory."""
    _json(registry.territory_view(run(lambda r: registry.get_territory(r, code))))


@territory_app.command("suspend")
def territory_suspend(code: str) -> None:
    """Suspend a territory: its API answers 423 until resumed."""
    t = run(lambda r: registry.set_status(r, code, "suspended", actor=ACTOR))
    console.print(f"territory {t.code} is {t.status}")


@territory_app.command("resume")
def territory_resume(code: str) -> None:
    """Resume a suspended territory."""
    t = run(lambda r: registry.set_status(r, code, "active", actor=ACTOR))
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
    from territories.codes import check_code
    from territories.migrate import migrate_territories, registered_territories

    if not all_ and not codes:
        err.print("[red]error[/red]: name territories or pass --all")
        raise typer.Exit(2)
    settings = get_settings()

    async def go(r: Router) -> list[Any]:
        known = await registered_territories(r.registry)
        if not all_:
            wanted = {check_code(c) for c in codes or []}
            missing = wanted - {c for c, _ in known}
            if missing:
                raise AppError(f"unknown territories: {', '.join(sorted(missing))}")
            known = [(c, s) for c, s in known if c in wanted]
        engines = {alias: await r.engine(alias) for alias in {s for _, s in known}}
        with progress_bar("migrating", quiet=as_json) as progress:
            task = progress.add_task("territories", total=len(known))
            return await migrate_territories(
                engines,
                known,
                target=target,
                concurrency=concurrency or settings.migrate_concurrency,
                on_outcome=lambda _o: progress.advance(task),
            )

    outcomes = run(go)
    counts = {k: sum(1 for o in outcomes if o.status == k) for k in ("upgraded", "skipped", "failed")}
    if as_json:
        _json({"counts": counts, "territories": [dataclasses.asdict(o) for o in outcomes]})
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


# --- openapi ----------------------------------------------------------------------------
@openapi_app.command("export")
def openapi_export(
    path: Annotated[Path, typer.Argument(help="Where to write it")] = Path("schemas/openapi.json"),
) -> None:
    """Write the app's OpenAPI document (checked in; a test keeps it in step)."""
    from core.app import openapi_document

    path.write_text(openapi_document() + "\n")
    console.print(f"wrote {path}")


def _mount_domain_clis() -> None:
    from federation.cli import gateway, matrix_app
    from services.auth.cli import auth_app
    from services.idp.cli import client_app, user_app
    from services.impact.cli import impact_app
    from services.leaderboards.cli import leaderboard_app
    from services.ledger.cli import ledger_app
    from services.social.cli import social_app
    from services.verification.cli import verification_app

    app.add_typer(auth_app, name="auth")
    app.add_typer(user_app, name="user")
    app.add_typer(client_app, name="idp-client")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(verification_app, name="verification")
    app.add_typer(social_app, name="social")
    app.add_typer(matrix_app, name="matrix")
    app.command("gateway")(gateway)
    app.add_typer(impact_app, name="impact")
    app.add_typer(leaderboard_app, name="leaderboard")


_mount_domain_clis()
