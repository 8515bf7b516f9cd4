"""``authgate sessions``: the web console's sessions, as its Sessions page lists them
(``authgate.manage.sessions`` decides who sees which)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from authgate.cli.client import open_backend
from authgate.cli.output import cli_errors, print_json, print_table, stdout

app = typer.Typer(help="List and end the web console's sessions.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = ["id", "who", "started", "last seen", "ends by", "from"]


def _who(session: dict[str, Any]) -> str:
    return str(session["user_email"] or f"operator {session['operator']}")


def _row(session: dict[str, Any]) -> list[Any]:
    return [
        session["id"],
        _who(session),
        session["created_at"],
        session["last_seen_at"],
        session["expires_at"],
        session["source"] or "",
    ]


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this user's sessions: an email or id.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Live console sessions, newest first."""
    with cli_errors(), open_backend(ctx) as backend:
        listed = backend.list_sessions(user)
        if as_json:
            print_json(listed)
            return
        print_table(COLUMNS, [_row(session) for session in listed])


@app.command("end")
def end_session(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="The session's id (ses_…).")],
    as_json: JsonOption = False,
) -> None:
    """End a session: its browser is signed out at its next request."""
    with cli_errors(), open_backend(ctx) as backend:
        ended = backend.end_session(session_id)
        if as_json:
            print_json(ended)
            return
        stdout.print(f"Session {ended['id']} of {_who(ended)} ended.", markup=False)
