"""``oneheart impact ...``: a territory's impact policy, the badge definitions. ``core.cli`` mounts ``impact_app``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import typer
from rich.markup import escape

from core.cli import ACTOR, console, err, print_json
from core.codes import check_code
from core.errors import AppError, NotFound
from core.routing import Router
from services.impact import badges, rules
from services.impact.rules import ImpactPolicy
from territories.cli import run
from territories.policy import apply_policy

impact_app = typer.Typer(help="What approved proofs pay: multipliers, level curve, badges.", no_args_is_help=True)


@impact_app.command("policy")
def policy(
    code: Annotated[str, typer.Argument(help="Territory code")],
    set_: Annotated[
        str | None,
        typer.Option(
            "--set",
            help='JSON object of changes, e.g. \'{"zones": {"<zone id>": 1.5}, "streak_cap": 2}\' (unset keys keep)',
        ),
    ] = None,
) -> None:
    """Show a territory's impact policy (defaults filled in), or change it with --set."""
    try:
        check_code(code)
        changes: dict[str, Any] | None = json.loads(set_) if set_ is not None else None
    except (ValueError, AppError) as exc:
        err.print(f"[red]error[/red] {escape(getattr(exc, 'detail', str(exc)))}")
        raise typer.Exit(2) from None
    if changes is not None and not isinstance(changes, dict):
        err.print("[red]error[/red] --set takes a JSON object")
        raise typer.Exit(2)

    policy = run(lambda r: apply_policy(r, code, rules.KEY, ImpactPolicy, changes, actor=ACTOR))
    print_json(msgspec.to_builtins(policy))


@impact_app.command("sync-badges")
def sync_badges(
    server: Annotated[
        list[str] | None, typer.Option("--server", help="Only this database server (repeat for more); default: all")
    ] = None,
) -> None:
    """Create public.badge_definitions on every database server and load the shipped definitions.

    A server whose role may not do that (CREATE on schema public for the first load) is named
    with the grant it needs; the command then exits with 1 after trying the others."""

    async def go(r: Router) -> dict[str, int | AppError]:
        known = await r.servers()
        if unknown := sorted(set(server or ()) - set(known)):
            raise NotFound(f"unknown database server {', '.join(map(repr, unknown))}")
        out: dict[str, int | AppError] = {}
        for alias in server or sorted(known):
            try:
                out[alias] = await badges.ensure_catalogue(await r.engine(alias), force=True)
            except AppError as exc:
                out[alias] = exc
        return out

    failed = False
    for alias, result in run(go).items():
        if isinstance(result, AppError):
            failed = True
            err.print(f"[red]error[/red] server {escape(alias)}: {escape(result.detail)}", soft_wrap=True)
        else:
            console.print(f"server {escape(alias)}: {result} definition{'' if result == 1 else 's'} added or changed")
    if failed:
        raise typer.Exit(1)
