"""``authgate keys``: API keys, on the local data folder or through a server's API."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from authgate.cli.client import open_backend
from authgate.cli.context import state_of
from authgate.cli.output import cli_errors, print_json, print_table, stdout
from authgate.clock import parse_duration
from authgate.credentials.tokens import hint
from authgate.errors import InvalidRequest
from authgate.manage.roles import RoleCatalogue

app = typer.Typer(help="Create, list, show, rotate and revoke API keys.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = ["id", "name", "hint", "scopes", "status", "expires", "last used", "uses"]


def _duration(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {exc}") from None


def _show_created(created: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(created)
        return
    stdout.print(f"Key [bold]{created['id']}[/] ({created['name']}) created.")
    stdout.print("Token (shown once, store it now; it cannot be shown again):")
    stdout.print(created["token"], markup=False)


def _rows(keys: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for meta in keys:
        status = "revoked" if meta["revoked"] else "expired" if meta["expired"] else "active"
        rows.append(
            [
                meta["id"],
                meta["name"],
                meta["hint"],
                ",".join(meta["scopes"]),
                status,
                meta["expires_at"] or "never",
                meta["last_used_at"] or "-",
                meta["use_count"],
            ]
        )
    return rows


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name: letters, digits, '-', '_', '.'.")],
    scope: Annotated[list[str] | None, typer.Option(help="A scope; repeat for more.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 30d or 12h.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its token once; each scope must be in the catalogue
    (authgate scopes list)."""
    with cli_errors():
        state = state_of(ctx)
        if state.url is None and scope:
            # The catalogue the server checks logins and service tokens against; in client
            # mode the server itself refuses, in the same words.
            RoleCatalogue.from_settings(state.settings()).check_known(scope)
        with open_backend(ctx) as backend:
            created = backend.create_key(
                name=name, scopes=scope or (), expires_in=_duration(expires_in, "--expires-in")
            )
        _show_created(created, as_json)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    everyone: Annotated[
        bool,
        typer.Option(
            "--all",
            help="With --url: every key you may act on (admins), not only your own. "
            "The local data folder always lists every key.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List keys (metadata only: tokens are never stored)."""
    with cli_errors(), open_backend(ctx) as backend:
        keys = backend.list_keys(everyone=everyone)
        if as_json:
            print_json(keys)
            return
        print_table(COLUMNS, _rows(keys))


@app.command("show")
def show(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Show one key's metadata."""
    with cli_errors(), open_backend(ctx) as backend:
        meta = backend.get_key(key_id)
        if as_json:
            print_json(meta)
            return
        print_table(["field", "value"], [[k, v] for k, v in meta.items()])


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Revoke a key; running servers refuse it within a second."""
    with cli_errors(), open_backend(ctx) as backend:
        meta = backend.revoke_key(key_id)
        if as_json:
            print_json(meta)
            return
        stdout.print(f"Key [bold]{key_id}[/] revoked.")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    key_id: str,
    grace: Annotated[str, typer.Option(help="How long the old key keeps working.")] = "24h",
    as_json: JsonOption = False,
) -> None:
    """Make a successor key; the old one works until the grace period ends."""
    with cli_errors(), open_backend(ctx) as backend:
        created = backend.rotate_key(key_id, grace=_duration(grace, "--grace"))
        _show_created(created, as_json)
        if not as_json:
            stdout.print(f"The old key {key_id} keeps working for {grace}.")


@app.command("report-leak")
def report_leak(
    ctx: typer.Context,
    found_at: Annotated[
        str,
        typer.Option("--found-at", help="Where they were seen (a URL), for the audit log."),
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Revoke tokens seen in public: read from standard input, one a line (never an argument,
    which ``ps`` would show). Each that is a key of ours is revoked now."""
    tokens = [line.strip() for line in sys.stdin if line.strip()]
    if not tokens:
        with cli_errors():
            raise InvalidRequest(
                "report-leak reads the tokens from standard input, one a line: "
                "authgate keys report-leak < leaked.txt"
            )
    with cli_errors(), open_backend(ctx) as backend:
        labels = backend.report_leaks(tokens, url=found_at)
        if as_json:
            print_json(labels)
            return
        rows = [[hint(token), label["label"]] for token, label in zip(tokens, labels, strict=True)]
        print_table(["token", "label"], rows)
        ours = sum(label["label"] == "true_positive" for label in labels)
        stdout.print(
            f"{ours} of {len(tokens)} were authgate tokens; the keys among them are revoked."
        )
