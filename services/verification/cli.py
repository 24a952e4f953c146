"""``oneheart verification ...``: train the review-score model. ``core.cli`` mounts
``verification_app``. Heavy imports (scikit-learn, onnxruntime) happen inside the command."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core.cli import ACTOR, console, err, given, show_settings
from core.routing import Router
from territories.cli import run

if TYPE_CHECKING:
    from services.verification.train import Report, Row

verification_app = typer.Typer(help="Automated evidence checks: the review-score model.", no_args_is_help=True)

_MODEL_PATH = Path(__file__).resolve().parent / "model" / "review.onnx"


def decisions_from_database(codes: list[str]) -> list[Row]:
    """The past community decisions of ``codes`` (every active territory when empty) as
    ``(features, 1 if validated else 0)`` rows."""
    from services.verification.decisions import community_decisions
    from territories.registry import Registry

    async def load(router: Router) -> list[Row]:
        from sqlalchemy.exc import DBAPIError

        try:
            return await community_decisions(router, await _codes(router))
        except (DBAPIError, OSError) as exc:
            first_line = str(exc).splitlines()[0]
            err.print(f"[red]error[/red]: cannot read past decisions from the territories: {escape(first_line)}")
            err.print("(--no-database trains on the seed data and --from-csv only)")
            raise typer.Exit(1) from None

    async def _codes(router: Router) -> list[str]:
        chosen = list(codes)
        if not chosen:
            chosen = [t.code for t in await Registry(router, ACTOR).all_territories("active")]
        return chosen

    return run(load)


def train_model(
    decisions: Iterable[Row] | None = None,
    *,
    from_csv: Path | None = None,
    out: Path = _MODEL_PATH,
    seed_only: bool = False,
) -> Report:
    """Fit on the seed dataset plus ``decisions`` plus the rows of ``from_csv`` (only the seed
    with ``seed_only``), write the ONNX model to ``out``; the held-out report."""
    from services.verification import train

    rows = train.read_csv(train.SEED_PATH)
    if not seed_only:
        rows += list(decisions or ())
        if from_csv is not None:
            rows += train.read_csv(from_csv)
    report, regression = train.evaluate(rows)
    train.write_model(train.to_onnx(regression), out)
    return report


@verification_app.command("train")
def train_command(
    from_csv: Annotated[
        Path | None,
        typer.Option("--from-csv", help="Also learn from this CSV (the feature columns and accepted 1/0)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write the ONNX model (default: DATA_DIR/models/review.onnx, used by the worker)"
        ),
    ] = None,
    seed_only: Annotated[
        bool, typer.Option("--seed-only", help="Learn from the shipped seed dataset only (rebuilds the shipped model)")
    ] = False,
    territory: Annotated[
        list[str] | None,
        typer.Option("--territory", help="Learn from these territories' decisions (default: every active one)"),
    ] = None,
    database: Annotated[
        bool,
        typer.Option("--database/--no-database", help="Learn from the community's decisions in the territories"),
    ] = True,
) -> None:
    """Train the review-score model on the seed data plus the community's past decisions
    (validated / invalidated proofs); print its weights and its held-out accuracy and AUC."""
    if seed_only and from_csv is not None:
        err.print("[red]error[/red]: --seed-only and --from-csv exclude each other")
        raise typer.Exit(2)
    decisions = decisions_from_database(territory or []) if database and not seed_only else []
    if out is None:
        from core.settings import get_settings

        out = get_settings().data_dir / "models" / "review.onnx"
    try:
        report = train_model(decisions, from_csv=from_csv, out=out, seed_only=seed_only)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error[/red]: {escape(str(exc).splitlines()[0])}")
        raise typer.Exit(1) from None
    print_report(report, decisions=len(decisions))
    console.print(f"wrote {escape(str(out))}")


def print_report(report: Report, *, decisions: int = 0) -> None:
    table = Table("feature", "weight", title="logistic regression (all rows)")
    for name, weight in report.weights.items():
        table.add_row(name, f"{weight:+.3f}")
    table.add_row("(intercept)", f"{report.intercept:+.3f}")
    console.print(table)
    console.print(
        f"{report.rows} rows ({report.accepted} accepted; {decisions} community decisions from the database); "
        f"held-out {report.test_rows}: accuracy {report.accuracy:.3f}, AUC {report.auc:.3f}"
    )


@verification_app.command("policy")
def policy_command(
    code: Annotated[str, typer.Argument(help="Territory code")],
    auto_approve_min: Annotated[
        int | None, typer.Option("--auto-approve-min", help="Lowest integrity score (0-100) approved without people")
    ] = None,
    reject_max: Annotated[
        int | None, typer.Option("--reject-max", help="Highest score rejected when evidence flags are raised")
    ] = None,
    always_community: Annotated[
        bool | None,
        typer.Option("--always-community/--auto", help="Send every proof to the community, or allow auto approval"),
    ] = None,
) -> None:
    """Show a territory's verification thresholds, or change them (changes apply to the next proof)."""
    from core.codes import check_code
    from services.verification.policy import KEY, VerificationPolicy
    from territories.policy import apply_policy

    check_code(code)
    changes = given(auto_approve_min=auto_approve_min, reject_max=reject_max, always_community=always_community)

    policy = run(lambda router: apply_policy(router, code, KEY, VerificationPolicy, changes, actor=ACTOR))
    show_settings(policy, f"verification policy of {code}")
