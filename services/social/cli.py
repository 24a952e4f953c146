"""``oneheart social policy CODE``: show or change a territory's quorum rule."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli import ACTOR, given, show_settings
from territories.cli import run

social_app = typer.Typer(help="Social validation: the quorum witnesses must reach.", no_args_is_help=True)


@social_app.command("policy")
def policy_command(
    code: Annotated[str, typer.Argument(help="Territory code")],
    min_witnesses: Annotated[int | None, typer.Option("--min-witnesses", help="Distinct witnesses needed")] = None,
    agreement: Annotated[
        float | None, typer.Option("--agreement", help="Share of the weighted votes one side must exceed (0.5-1)")
    ] = None,
    remote_weight: Annotated[
        float | None,
        typer.Option("--remote-weight", help="Weight of witnesses on other territories' homeservers (0-1)"),
    ] = None,
    post: Annotated[
        str | None, typer.Option("--post", help="needs_community (default) or always (auto-approved proofs too)")
    ] = None,
) -> None:
    """Show a territory's social-validation policy, or change it (applies to the next vote)."""
    from core.codes import check_code
    from services.social.policy import KEY, SocialPolicy
    from territories.policy import apply_policy

    check_code(code)
    changes = given(min_witnesses=min_witnesses, agreement=agreement, remote_weight=remote_weight, post=post)

    policy = run(lambda router: apply_policy(router, code, KEY, SocialPolicy, changes, actor=ACTOR))
    show_settings(policy, f"social policy of {code}")
