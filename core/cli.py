"""The CLI kit every command group uses: consoles, the one runner, progress bars, JSON output.

The ``oneheart`` command itself is assembled in ``node.cli`` from the domains' groups.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import AppError

console = Console()
err = Console(stderr=True)
T = TypeVar("T")
R = TypeVar("R")
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


def run_with(
    open_resource: Callable[[], R], close: Callable[[R], Awaitable[None]], fn: Callable[[R], Awaitable[T]]
) -> T:
    """Run ``fn`` with a resource opened for it (a router, ...) and closed after; an AppError
    becomes a one-line message and exit code 1."""

    async def main() -> T:
        resource = open_resource()
        try:
            return await fn(resource)
        finally:
            await close(resource)

    try:
        return asyncio.run(main())
    except AppError as exc:
        fail(f"({exc.code}): {exc.detail}")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error[/red] {escape(message)}")
    raise typer.Exit(code)


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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
