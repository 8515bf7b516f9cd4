"""``authgate scopes``: the catalogue of scopes a token may carry."""

from __future__ import annotations

from typing import Annotated

import typer

from authgate.cli.client import open_client
from authgate.cli.context import state_of
from authgate.cli.output import cli_errors, print_json, print_table
from authgate.manage.roles import RoleCatalogue

app = typer.Typer(
    help="The scope catalogue: built-in scopes and those of the scopes setting.",
    no_args_is_help=True,
)


@app.command("list")
def list_scopes(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every scope a token may carry, the roles that may grant it, and the defaults.

    Add the application's own scopes with one line in the config file,
    scopes = ["packages:write"], or AUTHGATE_SCOPES=packages:write.
    """
    with cli_errors():
        state = state_of(ctx)
        if state.url is None:
            scopes = RoleCatalogue.from_settings(state.settings()).describe()
        else:
            with open_client(ctx) as client:
                scopes = client.scopes()
        if as_json:
            print_json(scopes)
            return
        rows = [
            [s["name"], s["origin"], ", ".join(s["roles"]), "yes" if s["default"] else ""]
            for s in scopes
        ]
        print_table(["scope", "from", "roles that may grant it", "default"], rows)
