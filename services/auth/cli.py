"""``oneheart auth ...``: identity providers per territory, app clients, roles, signing keys."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated

import typer

from core.auth import node_keys
from core.cli import ACTOR, console
from core.settings import get_settings
from services.auth import service
from territories.cli import run

auth_app = typer.Typer(help="Identity: territory providers, app clients, roles, signing keys.", no_args_is_help=True)


@auth_app.command("set-provider")
def set_provider(
    territory: str,
    issuer: Annotated[str, typer.Option(help="OIDC issuer URL of the territory's identity provider")],
    client_id: Annotated[str, typer.Option(help="This node's client id at that provider")],
    client_secret_stdin: Annotated[bool, typer.Option(help="Read the client secret from stdin")] = False,
    scope: Annotated[list[str] | None, typer.Option(help="Scopes (repeatable; default openid profile)")] = None,
) -> None:
    """Point a territory's players at an OpenID Connect provider (secret kept in the node's secrets)."""
    secret = sys.stdin.readline().strip() if client_secret_stdin else None
    run(
        lambda r: service.set_provider(
            r, territory, issuer, client_id, secret, scope or ["openid", "profile"], actor=ACTOR
        )
    )
    console.print(f"territory {territory} logs in through {issuer}")


@auth_app.command("add-app")
def add_app(
    client_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    redirect_uri: Annotated[list[str], typer.Option(help="Exact redirect URI (repeatable)")],
) -> None:
    """Register a web or mobile app that logs players in (public client: PKCE, no secret)."""
    run(lambda r: service.add_app(r, client_id, name, redirect_uri, actor=ACTOR))
    console.print(f"app {client_id}: {', '.join(redirect_uri)}")


@auth_app.command("grant")
def grant(
    user_id: uuid.UUID,
    role: str,
    territory: Annotated[str | None, typer.Option(help="Territory (omit for global roles)")] = None,
) -> None:
    """Give a person a role (player, moderator, operator, sponsor, government, global_admin)."""
    run(lambda r: service.grant(r, user_id, role, territory, actor=ACTOR))
    console.print(f"{user_id} is {role}" + (f" in {territory}" if territory else " (global)"))


@auth_app.command("revoke")
def revoke(
    user_id: uuid.UUID,
    role: str,
    territory: Annotated[str | None, typer.Option(help="Territory (omit for global roles)")] = None,
) -> None:
    """Take a role away."""
    removed = run(lambda r: service.revoke_role(r, user_id, role, territory, actor=ACTOR))
    console.print("revoked" if removed else "that person did not have that role")


@auth_app.command("ensure-key")
def ensure_key() -> None:
    """Make the node's token signing key if there is none, or a new one when it is due for
    rotation (idempotent; run once before the replicas start, as compose's migrate job does)."""
    ring = node_keys(get_settings()).ensure_current()
    console.print(f"signing key {ring.current.kid}")


@auth_app.command("rotate-key")
def rotate_key() -> None:
    """Start signing access tokens with a new key; the old one stays published until its tokens expire."""
    kid = node_keys(get_settings()).rotate()
    console.print(f"new signing key {kid}")
