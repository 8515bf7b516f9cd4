"""``authgate login``: exchange email and password for a token, kept for later commands."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from authgate.cli.client import open_client, remember_token
from authgate.cli.context import state_of
from authgate.cli.output import cli_errors, print_json, stdout
from authgate.cli.users import read_password
from authgate.clock import now_utc
from authgate.errors import InvalidRequest
from authgate.passwords import check_login_password


def default_token_name() -> str:
    """``cli-<host>-<UTC time>-<random>``: names are unique per user, and one may log in
    more than once a second."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:32] or "host"
    return f"cli-{host}-{now_utc():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def login(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="Your email.")],
    url: Annotated[
        str | None, typer.Option(help="The server (default: --url before the command).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="A name for the token.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="A scope; repeat for more.")] = None,
    expires_in_days: Annotated[int | None, typer.Option(help="Lifetime in days.")] = None,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            envvar="AUTHGATE_CA_BUNDLE",
            help="CA bundle (PEM) to trust for an https server, e.g. a self-signed one's.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Log in to a server; its token is stored (0600) as the default for that URL."""
    with cli_errors():
        server = url or state_of(ctx).url
        if server is None:
            raise InvalidRequest("login needs --url (or AUTHGATE_URL).")
        password = check_login_password(read_password(password_stdin, confirm=False))
        with open_client(ctx, url=server, cacert=cacert, authenticated=False) as client:
            login_token = client.login(
                email,
                password,
                name=name or default_token_name(),
                scopes=scope or None,
                expires_in_days=expires_in_days,
            )
        created: dict[str, Any] = dict(login_token)
        token = created.pop("token")
        path = remember_token(
            server,
            {
                "token": token,
                "email": email,
                "key_id": created["id"],
                "expires_at": created["expires_at"],
            },
            state_of(ctx).credentials_file(),
        )
        if as_json:
            print_json({"url": server, "email": email, "credentials_file": str(path), **created})
            return
        stdout.print(f"Logged in to {server} as {email}.", markup=False)
        stdout.print(
            f"Token {created['id']} ({created['name']}) stored in {path}; "
            f"it expires {created['expires_at']}.",
            markup=False,
        )
