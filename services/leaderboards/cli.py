"""``oneheart leaderboard rebuild CODE``: recount a territory's leaderboards from its ledger."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.markup import escape

from core.cli import console, err, progress_bar
from core.codes import check_code
from core.errors import Unavailable
from core.routing import Router
from core.settings import get_settings
from services.leaderboards.rebuild import Report
from services.leaderboards.service import rebuild
from territories.cli import run

leaderboard_app = typer.Typer(help="Leaderboards (Redis), recounted from the ledgers.", no_args_is_help=True)


@leaderboard_app.command("rebuild")
def rebuild_command(
    code: Annotated[str, typer.Argument(help="Territory code")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Recount every board of a territory from its ledger's proof payouts and swap them in at once
    (for a Redis that was emptied or lost; safe while the worker runs)."""
    try:
        code = check_code(code)
    except Exception as exc:
        err.print(f"[red]error[/red] {escape(str(getattr(exc, 'detail', exc)))}")
        raise typer.Exit(2) from None
    settings = get_settings()
    with progress_bar(f"rebuilding leaderboards of {code}", quiet=as_json) as bar:
        task = bar.add_task("ledger entries", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def go(router: Router) -> Report:
            redis = Redis.from_url(settings.redis.url, socket_connect_timeout=5, socket_timeout=30)
            try:
                return await rebuild(router, redis, code, settings, progress=progress)
            except (RedisError, OSError) as exc:
                raise Unavailable(f"Redis at {settings.redis.url} failed: {exc}") from None
            finally:
                await redis.aclose()

        report = run(go)
    if as_json:
        print(json.dumps(dataclasses.asdict(report)))
        return
    console.print(
        f"[green]ok[/green] leaderboards of {code}: {report.payouts} payouts up to ledger entry {report.upto} "
        f"in {report.boards} boards, {report.caught_up} later payouts applied ({report.seconds:.2f} s)",
        soft_wrap=True,
    )
