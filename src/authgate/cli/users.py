"""``authgate users``: people who log in with email and password, and their roles."""

from __future__ import annotations

import getpass
import sys
import warnings
from typing import Annotated, Any

import typer

from authgate.cli.client import open_backend
from authgate.cli.output import cli_errors, print_json, print_table, stdout
from authgate.errors import InvalidRequest
from authgate.passwords import check_new_password

app = typer.Typer(
    help="Add users, list them, disable them, change roles, reset passwords.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]
UserArgument = Annotated[str, typer.Argument(help="The user's email or id.")]
COLUMNS = ["id", "email", "role", "status", "created"]


def read_password(from_stdin: bool, *, confirm: bool, prompt: str = "Password") -> str:
    """From stdin or a hidden prompt: never from an argument, which ``ps`` would show."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidRequest("--password-stdin: standard input is empty.")
        return line.rstrip("\r\n")
    with warnings.catch_warnings():
        # getpass warns, then reads stdin with echo, when there is no terminal to hide the
        # typing on: a script's password would be echoed or its next line eaten. Refused.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            # On stderr, so that --json output on stdout stays parseable.
            password: str = typer.prompt(
                prompt, hide_input=True, confirmation_prompt=confirm, err=True
            )
        except getpass.GetPassWarning:
            typer.echo(err=True)  # end the prompt's line
            raise InvalidRequest(
                "no terminal to ask for the password on: "
                "send it on standard input with --password-stdin."
            ) from None
    return password


def new_password(from_stdin: bool) -> str:
    # Checked here so both modes answer with the same sentence before anything is sent.
    return check_new_password(read_password(from_stdin, confirm=True))


def _row(user: dict[str, Any]) -> list[Any]:
    status = "active" if user["active"] else "disabled"
    return [user["id"], user["email"], user["role"], status, user["created_at"]]


def _show(user: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        print_json(user)
    else:
        stdout.print(message.format(**user), markup=False)


@app.command("add")
def add(
    ctx: typer.Context,
    email: str,
    role: Annotated[str, typer.Option(help="The user's role.")] = "member",
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Add a user; the password is asked for (or read with --password-stdin)."""
    with cli_errors():
        password = new_password(password_stdin)
        with open_backend(ctx) as backend:
            user = backend.add_user(email=email, password=password, role=role)
        _show(user, as_json, "User {email} ({id}) added with the role {role}.")


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List users (never their password hashes)."""
    with cli_errors(), open_backend(ctx) as backend:
        users = backend.list_users()
        if as_json:
            print_json(users)
            return
        print_table(COLUMNS, [_row(user) for user in users])


@app.command("disable")
def disable(ctx: typer.Context, user: UserArgument, as_json: JsonOption = False) -> None:
    """Disable a user: no more logins, and their tokens stop working at once."""
    with cli_errors(), open_backend(ctx) as backend:
        updated = backend.update_user(user, active=False)
        _show(updated, as_json, "User {email} ({id}) disabled.")


@app.command("enable")
def enable(ctx: typer.Context, user: UserArgument, as_json: JsonOption = False) -> None:
    """Enable a disabled user again."""
    with cli_errors(), open_backend(ctx) as backend:
        updated = backend.update_user(user, active=True)
        _show(updated, as_json, "User {email} ({id}) enabled.")


@app.command("set-role")
def set_role(
    ctx: typer.Context, user: UserArgument, role: str, as_json: JsonOption = False
) -> None:
    """Change a user's role; their tokens' powers follow at once."""
    with cli_errors(), open_backend(ctx) as backend:
        updated = backend.update_user(user, role=role)
        _show(updated, as_json, "User {email} ({id}) now has the role {role}.")


@app.command("reset-password")
def reset_password(
    ctx: typer.Context,
    user: UserArgument,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Set a new password for a user."""
    with cli_errors():
        password = new_password(password_stdin)
        with open_backend(ctx) as backend:
            updated = backend.reset_password(user, password)
        _show(updated, as_json, "Password of {email} ({id}) reset.")
