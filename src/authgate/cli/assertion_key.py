"""``authgate assertion-key``: the key that signs ``X-Authgate-Assertion``.

Local only: the key is a file in the server's data folder, and no endpoint touches it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from authgate.cli.context import local_only, state_of
from authgate.cli.output import cli_errors, print_json, stdout
from authgate.extras import require

__all__ = ["app"]

app = typer.Typer(help="The key that signs assertions for upstreams.", no_args_is_help=True)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a new signing key; the old one stays in the JWKS for the overlap."""
    with cli_errors():
        local_only(ctx, "assertion-key rotate")
        require("joserfc", extra="assertion", needed_for="assertion-key rotate")
        from authgate.assertion.issuer import keys_from_settings

        settings = state_of(ctx).settings()
        keys = keys_from_settings(settings)
        report = keys.rotate()
    if as_json:
        print_json(
            {
                "path": str(report.path),
                "kid": report.kid,
                "published": report.published,
                "dropped": report.dropped,
            }
        )
        return
    stdout.print(
        f"Assertion key rotated: new kid {report.kid}; {report.published} keys published "
        f"(old ones until {keys.overlap_seconds:.0f} s after their rotation).",
        markup=False,
    )
    stdout.print(
        "Running servers sign with the new key within a second; upstreams fetch it from "
        "the JWKS when they first meet its kid.",
        markup=False,
    )
