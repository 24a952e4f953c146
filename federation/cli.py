"""``oneheart gateway`` (the Matrix gateway) and ``oneheart matrix ...`` (homeserver links)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from core.cli import ACTOR, console, err
from core.settings import get_settings
from territories.cli import run

matrix_app = typer.Typer(help="Territories' Matrix homeservers and the gateway's registration.", no_args_is_help=True)


def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address (default OH_MATRIX_GATEWAY_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OH_MATRIX_GATEWAY_PORT)")] = None,
) -> None:
    """Run the Matrix gateway: the application-service endpoint and the posting consumers."""
    from federation.gateway import run_gateway

    settings = get_settings()
    try:
        asyncio.run(run_gateway(settings, host or settings.matrix.gateway_host, port or settings.matrix.gateway_port))
    except KeyboardInterrupt:
        pass


@matrix_app.command("configure")
def configure_command(
    code: Annotated[str, typer.Argument(help="Territory code")],
    server_name: Annotated[str, typer.Option("--server-name", help="The homeserver's name, e.g. matrix.example.org")],
    url: Annotated[str, typer.Option("--url", help="Its client-server API, e.g. https://matrix.example.org")],
    admin_token_stdin: Annotated[
        bool, typer.Option("--admin-token-stdin", help="Read an admin's access token (SSO links) from stdin")
    ] = False,
) -> None:
    """Store a territory's homeserver and make the gateway's tokens (kept if they exist); then
    `oneheart matrix registration` for the homeserver and `oneheart matrix attach`."""
    from core.codes import check_code
    from federation import config

    check_code(code)
    settings = get_settings()
    old = config.load(settings, code)
    admin = sys.stdin.readline().strip() if admin_token_stdin else (old.admin_token if old else None)
    cfg = config.HomeserverConfig(
        server_name=server_name,
        url=url.rstrip("/"),
        as_token=old.as_token if old and old.server_name == server_name else config.new_token(),
        hs_token=old.hs_token if old and old.server_name == server_name else config.new_token(),
        admin_token=admin or None,
        oidc_issuer=old.oidc_issuer if old else None,
        oidc_client_id=old.oidc_client_id if old else None,
        oidc_client_secret=old.oidc_client_secret if old else None,
    )
    config.save(settings, code, cfg)
    console.print(f"territory {escape(code)}: homeserver {escape(server_name)} stored in the node's secrets")


@matrix_app.command("attach")
def attach_command(code: Annotated[str, typer.Argument(help="Territory code")]) -> None:
    """Name the territory's homeserver in the registry from the config the node holds, and
    register the homeserver with the built-in OIDC provider (single sign-on). Idempotent."""
    from federation.homeservers import attach

    cfg = run(lambda r: attach(r, get_settings(), code, actor=ACTOR))
    console.print(f"territory {escape(code)} uses homeserver {escape(cfg.server_name)} ({escape(cfg.url)})")


@matrix_app.command("registration")
def registration_command(
    code: Annotated[str, typer.Argument(help="Territory code")],
    url: Annotated[str, typer.Option(help="The gateway's base URL as the homeserver reaches it")],
) -> None:
    """Print the application-service registration (YAML, as JSON) for the territory's homeserver."""
    from federation import config
    from federation.registration import appservice_registration

    cfg = config.load(get_settings(), code)
    if cfg is None:
        err.print(f"[red]error[/red]: no homeserver config for {escape(code)} in the node's secrets")
        raise typer.Exit(1)
    doc = appservice_registration(
        territory=code,
        server_name=cfg.server_name,
        url=f"{url.rstrip('/')}/territories/{code}",
        as_token=cfg.as_token,
        hs_token=cfg.hs_token,
    )
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
