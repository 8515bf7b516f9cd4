"""``authgate master-key``: the key access key secrets are encrypted with.

Local only: the master key is a file on the server's host, and no endpoint touches it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from authgate.cli.client import CLI_ACTOR
from authgate.cli.context import local_only, local_runtime
from authgate.cli.output import cli_errors, print_json, stdout

__all__ = ["app"]

app = typer.Typer(help="The master key that encrypts access key secrets.", no_args_is_help=True)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a new master key and re-encrypt every access key secret under it."""
    with cli_errors():
        local_only(ctx, "master-key rotate")
        with local_runtime(ctx) as runtime:
            report = runtime.access_keys.rotate_master_key(CLI_ACTOR)
    if as_json:
        print_json(
            {
                "path": str(report.path),
                "reencrypted": report.reencrypted,
                "dropped_keys": report.dropped_keys,
            }
        )
        return
    stdout.print(
        f"Master key rotated: {report.reencrypted} secrets re-encrypted; "
        f"{report.path} now holds the new key only.",
        markup=False,
    )
    stdout.print(
        "Copy it to every other instance that shares this store, and back it up.", markup=False
    )
