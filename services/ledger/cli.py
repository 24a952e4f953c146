"""``oneheart ledger ...``: verify, checkpoint, export, rotate-key. ``core.cli`` mounts ``ledger_app``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from core.cli import console, err, progress_bar
from core.codes import check_code
from core.routing import Router
from core.settings import get_settings
from services.ledger import audit, service
from services.ledger import keys as ledger_keys
from services.ledger.verify import Report
from territories.cli import run

ledger_app = typer.Typer(help="The territories' tamper-evident ledgers.", no_args_is_help=True)


def _code(code: str) -> str:
    try:
        return check_code(code)
    except Exception as exc:
        err.print(f"[red]error[/red] {escape(getattr(exc, 'detail', str(exc)))}")
        raise typer.Exit(2) from None


def _show(report: Report, seconds: float, as_json: bool) -> None:
    rate = report.entries / seconds if seconds > 0 else 0.0
    first = report.first_problem
    if as_json:
        print(
            json.dumps(
                {
                    "territory": report.territory,
                    "ok": report.ok,
                    "entries": report.entries,
                    "checkpoints": report.checkpoints,
                    "balances": report.balances,
                    "first_bad_entry": report.first_bad_entry,
                    "problems": [
                        {"seq": p.seq, "tree_size": p.tree_size, "account": p.account, "reason": p.reason}
                        for p in report.problems
                    ],
                    "seconds": round(seconds, 3),
                }
            )
        )
    if report.ok:
        if not as_json:
            console.print(
                f"[green]ok[/green] ledger {report.territory}: {report.entries} entries, "
                f"{report.checkpoints} checkpoint{'' if report.checkpoints == 1 else 's'}, "
                f"hashes, chain, roots and signatures verified "
                f"({seconds:.2f} s, {rate:,.0f} entries/s)",
                soft_wrap=True,
            )
        return
    assert first is not None
    if report.first_bad_entry is not None:
        err.print(
            f"[red]FAILED[/red] ledger {report.territory}: first bad entry is seq {report.first_bad_entry}",
            soft_wrap=True,
        )
    else:
        err.print(f"[red]FAILED[/red] ledger {report.territory}: {escape(str(first))}", soft_wrap=True)
    for p in report.problems[:20]:
        err.print(f"  {escape(str(p))}", soft_wrap=True)
    hidden = len(report.problems) - 20 + report.more_problems
    if hidden > 0:
        err.print(f"  ... and {hidden} more")
    raise typer.Exit(1)


@ledger_app.command("verify")
def verify(
    code: Annotated[str, typer.Argument(help="Territory code")],
    from_export: Annotated[
        Path | None,
        typer.Option("--from-export", help="Verify this export file offline (no database)", exists=True),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="JSON of GET /api/ledger/keys to trust (offline; default: the keys inside the export)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Recompute every entry hash, the chain, every checkpoint's root and signature, and the
    balances; exit 0 when all hold, 1 naming the first bad entry otherwise."""
    code = _code(code)
    started = time.perf_counter()
    with progress_bar(f"verifying {code}", quiet=as_json) as bar:
        task = bar.add_task("entries", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if from_export is not None:
            trusted = None
            if keys is not None:
                try:
                    trusted = ledger_keys.parse_jwks(json.loads(keys.read_text()))
                except (ValueError, KeyError, TypeError) as exc:
                    err.print(f"[red]error[/red] {keys}: not a key set ({escape(str(exc))})")
                    raise typer.Exit(2) from None
            try:
                report, _ = audit.verify_export(from_export, code, keys=trusted, progress=progress)
            except audit.ExportError as exc:
                err.print(f"[red]FAILED[/red] {from_export}: {escape(str(exc))}", soft_wrap=True)
                raise typer.Exit(1) from None
            if trusted is None and not as_json:
                err.print(
                    "[yellow]note[/yellow] signatures checked against the keys inside the export; "
                    "pass --keys with the territory's published keys to trust them independently"
                )
        else:
            if keys is not None:
                err.print("[red]error[/red] --keys goes with --from-export (the database check uses this node's keys)")
                raise typer.Exit(2)
            settings = get_settings()
            report = run(lambda r: audit.verify_database(r, code, settings, progress=progress))
    _show(report, time.perf_counter() - started, as_json)


@ledger_app.command("checkpoint")
def checkpoint(code: Annotated[str, typer.Argument(help="Territory code")]) -> None:
    """Sign a checkpoint of the ledger now (nothing new: shows the latest)."""
    code = _code(code)
    settings = get_settings()

    async def go(r: Router) -> service.Checkpoint | None:
        async with r.transaction(await r.lookup(code)) as conn:
            return await service.checkpoint(conn, code, settings)

    cp = run(go)
    if cp is None:
        console.print(f"ledger {code} is empty: nothing to sign")
        return
    console.print(f"checkpoint {code} tree_size={cp.tree_size} root={cp.root.hex()} key={cp.key_id}", soft_wrap=True)


@ledger_app.command("export")
def export(
    code: Annotated[str, typer.Argument(help="Territory code")],
    out: Annotated[Path, typer.Option("--out", help="File to write (JSON lines)", dir_okay=False)],
) -> None:
    """Write every entry, checkpoint and balance (one snapshot) to a file for offline audit."""
    code = _code(code)
    settings = get_settings()
    tmp = out.with_name(out.name + ".part")

    async def go(r: Router) -> None:
        async with service.snapshot(r, await r.lookup(code)) as conn:
            with tmp.open("wb") as fh:
                async for chunk in service.export_lines(conn, code, settings):
                    fh.write(chunk)

    run(go)
    tmp.replace(out)
    console.print(f"wrote {out}")


@ledger_app.command("rotate-key")
def rotate_key(code: Annotated[str, typer.Argument(help="Territory code")]) -> None:
    """Add a newer signing key for the territory's checkpoints (older ones stay published)."""
    key = ledger_keys.new_key(get_settings(), _code(code))
    console.print(f"new ledger key for {code}: {key.key_id}")
