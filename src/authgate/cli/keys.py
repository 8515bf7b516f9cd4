"""``authgate keys``: API keys on the local data folder."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from authgate.cli.context import local_runtime
from authgate.cli.output import cli_errors, print_json, print_table, stdout
from authgate.clock import now_utc, parse_duration
from authgate.errors import InvalidRequest
from authgate.keys import Actor, CreatedKey
from authgate.store.records import ApiKeyRecord

app = typer.Typer(help="Create, list, show, rotate and revoke API keys.", no_args_is_help=True)

CLI_ACTOR = Actor("cli", source="cli")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _duration(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {exc}") from None


def _show_created(created: CreatedKey, as_json: bool) -> None:
    meta = created.record.metadata(now_utc())
    if as_json:
        print_json({"token": created.token, **meta})
        return
    stdout.print(f"Key [bold]{meta['id']}[/] ({meta['name']}) created.")
    stdout.print("Token (shown once, store it now; it cannot be shown again):")
    stdout.print(created.token, markup=False)


def _rows(records: list[ApiKeyRecord]) -> list[list[Any]]:
    now = now_utc()
    rows = []
    for record in records:
        meta = record.metadata(now)
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
    """Create a key and print its token once."""
    with cli_errors(), local_runtime(ctx) as runtime:
        created = runtime.keys.create(
            CLI_ACTOR,
            name=name,
            scopes=scope or (),
            expires_in=_duration(expires_in, "--expires-in"),
        )
        _show_created(created, as_json)


@app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every key (metadata only: tokens are never stored)."""
    with cli_errors(), local_runtime(ctx) as runtime:
        records = runtime.keys.list(everyone=True)
        if as_json:
            now = now_utc()
            print_json([record.metadata(now) for record in records])
            return
        columns = ["id", "name", "hint", "scopes", "status", "expires", "last used", "uses"]
        print_table(columns, _rows(records))


@app.command("show")
def show(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Show one key's metadata."""
    with cli_errors(), local_runtime(ctx) as runtime:
        meta = runtime.keys.get(key_id).metadata(now_utc())
        if as_json:
            print_json(meta)
            return
        print_table(["field", "value"], [[k, v] for k, v in meta.items()])


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Revoke a key; running servers refuse it within a second."""
    with cli_errors(), local_runtime(ctx) as runtime:
        meta = runtime.keys.revoke(CLI_ACTOR, key_id).metadata(now_utc())
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
    with cli_errors(), local_runtime(ctx) as runtime:
        created = runtime.keys.rotate(CLI_ACTOR, key_id, grace=_duration(grace, "--grace"))
        _show_created(created, as_json)
        if not as_json:
            stdout.print(f"The old key {key_id} keeps working for {grace}.")
