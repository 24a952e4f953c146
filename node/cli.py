"""The ``oneheart`` command line: serve the API, run the worker and the gateway, and every
domain's command group. Groups of installed plugins (entry points ``oneheart.cli``, e.g. the
development stack's ``stack``) are mounted too."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from core.cli import console, err
from core.settings import get_settings
from federation.cli import gateway, matrix_app
from services.auth.cli import auth_app
from services.idp.cli import client_app, user_app
from services.impact.cli import impact_app
from services.leaderboards.cli import leaderboard_app
from services.ledger.cli import ledger_app
from services.social.cli import social_app
from services.verification.cli import verification_app
from territories.cli import registry_app, server_app, territory_app

app = typer.Typer(
    help="OneHeart node: serve the API, run workers, manage the territory registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OH_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OH_HTTP_PORT)")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated services to mount (default: all)")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from node.app import create_app

    settings = get_settings()
    try:
        application = create_app(settings, only=[s.strip() for s in only.split(",")] if only else None)
    except ValueError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=host or settings.http.host,
        port=port or settings.http.port,
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
    from node.worker import run_worker

    names = consumer if consumers and consumer else ([] if not consumers else None)
    try:
        asyncio.run(run_worker(get_settings(), relay=relay, consumer_names=names))
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}")
        raise typer.Exit(2) from None


@openapi_app.command("export")
def openapi_export(
    path: Annotated[Path, typer.Argument(help="Where to write it")] = Path("schemas/openapi.json"),
) -> None:
    """Write the app's OpenAPI document (checked in; a test keeps it in step)."""
    from node.app import openapi_document

    path.write_text(openapi_document() + "\n")
    console.print(f"wrote {path}")


app.add_typer(registry_app, name="registry")
app.add_typer(server_app, name="server")
app.add_typer(territory_app, name="territory")
app.add_typer(openapi_app, name="openapi")
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
for plugin in entry_points(group="oneheart.cli"):
    app.add_typer(plugin.load(), name=plugin.name)
