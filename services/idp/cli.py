"""``oneheart user ...`` (accounts) and ``oneheart idp-client ...`` (relying parties) of the
built-in OIDC provider. ``core.cli`` mounts ``user_app`` and ``client_app``."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from core.cli import console, err, print_json
from core.errors import InvalidInput
from core.urls import check_redirect_uri
from services.idp import service
from services.idp.passwords import WeakPassword, hash_password, new_client_secret
from services.idp.service import CLIENT_ID, USERNAME
from territories.cli import run

user_app = typer.Typer(help="Accounts of the node's built-in OIDC provider.", no_args_is_help=True)
client_app = typer.Typer(help="Applications (relying parties) of the built-in OIDC provider.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error[/red] {escape(message)}")
    raise typer.Exit(1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        _fail("no terminal to ask for the password on: pass --password-stdin and write it to stdin")
    return password


# --- accounts -----------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="2-64 characters: a-z 0-9 . _ - (starting with a letter or digit)")],
    display_name: Annotated[str | None, typer.Option("--display-name", help="Shown name (the name claim)")] = None,
    email: Annotated[str | None, typer.Option("--email", help="E-mail address (the email claim)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Add an account. Asks for the password twice, or reads one line from stdin."""
    if not USERNAME.fullmatch(username):
        _fail(f"invalid username {username!r}: 2-64 characters of a-z 0-9 . _ -, starting with a letter or digit")
    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        _fail(f"invalid e-mail address {email!r}")
    try:
        password_hash = hash_password(_read_password(password_stdin))
    except WeakPassword as exc:
        _fail(str(exc))
    account_id = run(lambda r: service.add_account(r, username, password_hash, display_name, email))
    console.print(f"added account {escape(username)} (subject {account_id})")


@user_app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts (never their password hashes)."""
    rows = run(service.list_accounts)
    data = [
        {
            "id": str(r.id),
            "username": r.username,
            "display_name": r.display_name,
            "email": r.email,
            "disabled": r.disabled,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    table = Table("username", "display name", "email", "disabled", "subject")
    for d in data:
        table.add_row(d["username"], d["display_name"] or "", d["email"] or "", "yes" if d["disabled"] else "", d["id"])
    console.print(table)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Refuse the account's sign-ins; its access tokens stop working at once."""
    run(lambda r: service.set_disabled(r, username, True))
    console.print(f"disabled account {escape(username)}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Allow a disabled account to sign in again."""
    run(lambda r: service.set_disabled(r, username, False))
    console.print(f"enabled account {escape(username)}")


# --- clients ------------------------------------------------------------------------------
@client_app.command("add")
def client_add(
    client_id: Annotated[str, typer.Argument(help="1-64 characters: letters, digits . _ : -")],
    name: Annotated[str, typer.Option("--name", help="Shown on the sign-in page")],
    redirect_uri: Annotated[list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeatable)")],
    public: Annotated[bool, typer.Option("--public", help="No secret (native or browser app); PKCE required")] = False,
) -> None:
    """Register an application. Confidential clients get a secret, printed once."""
    if not CLIENT_ID.fullmatch(client_id):
        _fail(f"invalid client id {client_id!r}: 1-64 characters of letters, digits . _ : -")
    if not name.strip():
        _fail("--name must not be empty")
    try:
        uris = list(dict.fromkeys(check_redirect_uri(u, public=public) for u in redirect_uri))
    except InvalidInput as exc:
        _fail(exc.detail)
    secret, secret_hash = (None, None) if public else new_client_secret()
    run(lambda r: service.add_client(r, client_id, name.strip(), secret_hash, uris))
    console.print(f"added {'public' if public else 'confidential'} client {escape(client_id)}")
    if secret is not None:
        # Plain print: the secret must not be wrapped or styled.
        print(f"client_secret: {secret}")
        err.print("Store this secret now: only its hash is kept, it cannot be shown again.")


@client_app.command("list")
def client_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List applications (never their secrets)."""
    data = run(service.list_clients)
    if as_json:
        print_json(data)
        return
    table = Table("client id", "name", "type", "redirect URIs")
    for d in data:
        table.add_row(d["client_id"], d["name"], d["type"], "\n".join(d["redirect_uris"]))
    console.print(table)
