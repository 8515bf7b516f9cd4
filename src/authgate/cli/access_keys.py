"""``authgate access-keys``: SigV4 access keys and their bucket grants, on the local data
folder or through a server's API (``--url`` / ``AUTHGATE_URL``), like ``authgate keys``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Protocol

import typer

from authgate.cli.client import CLI_ACTOR, open_client
from authgate.cli.context import local_runtime, state_of
from authgate.cli.output import cli_errors, print_json, print_table, stdout
from authgate.client import AuthgateClient
from authgate.manage.access_keys import access_key_dict, parse_grant, validate_bucket
from authgate.manage.keys import Actor
from authgate.runtime import Runtime

__all__ = ["AccessKeyBackend", "LocalAccessKeys", "RemoteAccessKeys", "app", "open_access_keys"]

app = typer.Typer(
    help="SigV4 access keys for S3 clients (boto3, the AWS CLI): create, list, revoke, grant.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KeyArgument = Annotated[str, typer.Argument(help="The access key id (AKAG…) or internal id.")]
COLUMNS = ["id", "access key id", "name", "grants", "status", "created"]


class AccessKeyBackend(Protocol):
    def create(self, *, name: str, grants: dict[str, str]) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def get(self, ident: str) -> dict[str, Any]: ...
    def revoke(self, ident: str) -> dict[str, Any]: ...
    def grant(self, ident: str, bucket: str, permission: str) -> dict[str, Any]: ...
    def revoke_grant(self, ident: str, bucket: str) -> dict[str, Any]: ...


class LocalAccessKeys:
    """The data folder (or ``AUTHGATE_DATABASE_URL``), as its operator."""

    def __init__(self, runtime: Runtime, actor: Actor = CLI_ACTOR) -> None:
        self._service = runtime.access_keys
        self._actor = actor

    def create(self, *, name: str, grants: dict[str, str]) -> dict[str, Any]:
        return self._service.create(self._actor, name=name, grants=grants).as_dict()

    def list(self) -> list[dict[str, Any]]:
        return [access_key_dict(record) for record in self._service.list()]

    def get(self, ident: str) -> dict[str, Any]:
        return access_key_dict(self._service.get(ident))

    def revoke(self, ident: str) -> dict[str, Any]:
        return access_key_dict(self._service.revoke(self._actor, ident))

    def grant(self, ident: str, bucket: str, permission: str) -> dict[str, Any]:
        return access_key_dict(self._service.grant(self._actor, ident, bucket, permission))

    def revoke_grant(self, ident: str, bucket: str) -> dict[str, Any]:
        return access_key_dict(self._service.revoke_grant(self._actor, ident, bucket))


class RemoteAccessKeys:
    """A server's ``/authgate/v1/access-keys`` through ``authgate.client``, as an admin."""

    def __init__(self, client: AuthgateClient) -> None:
        self._client = client

    def create(self, *, name: str, grants: dict[str, str]) -> dict[str, Any]:
        return dict(self._client.create_access_key(name, grants=grants))

    def list(self) -> list[dict[str, Any]]:
        return [dict(key) for key in self._client.list_access_keys()]

    def get(self, ident: str) -> dict[str, Any]:
        return dict(self._client.get_access_key(ident))

    def revoke(self, ident: str) -> dict[str, Any]:
        return dict(self._client.revoke_access_key(ident))

    def grant(self, ident: str, bucket: str, permission: str) -> dict[str, Any]:
        return dict(self._client.set_grant(ident, bucket, permission))

    def revoke_grant(self, ident: str, bucket: str) -> dict[str, Any]:
        return dict(self._client.delete_grant(ident, bucket))


@contextmanager
def open_access_keys(ctx: typer.Context) -> Iterator[AccessKeyBackend]:
    """The remote API when a URL is given, else the local data folder."""
    if state_of(ctx).url is None:
        with local_runtime(ctx) as runtime:
            yield LocalAccessKeys(runtime)
        return
    with open_client(ctx) as client:
        yield RemoteAccessKeys(client)


def _grants_label(grants: dict[str, str]) -> str:
    return ",".join(f"{bucket}={permission}" for bucket, permission in grants.items()) or "-"


def _rows(keys: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            meta["id"],
            meta["access_key_id"],
            meta["name"],
            _grants_label(meta["grants"]),
            "revoked" if meta["revoked"] else "active",
            meta["created_at"],
        ]
        for meta in keys
    ]


def _show(meta: dict[str, Any], as_json: bool, sentence: str) -> None:
    if as_json:
        print_json(meta)
    else:
        stdout.print(sentence, markup=False)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name: letters, digits, '-', '_', '.'.")],
    grant: Annotated[
        list[str] | None,
        typer.Option(
            help="BUCKET=read|write|admin; BUCKET may be a pattern (backup-*, *); repeat it."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an access key and print its secret once."""
    with cli_errors():
        grants: dict[str, str] = {}
        for text in grant or ():
            bucket, permission = parse_grant(text)
            grants[bucket] = permission
        with open_access_keys(ctx) as backend:
            created = backend.create(name=name, grants=grants)
    if as_json:
        print_json(created)
        return
    stdout.print(
        f"Access key {created['access_key_id']} ({created['name']}) created.", markup=False
    )
    stdout.print(f"Grants: {_grants_label(created['grants'])}", markup=False)
    stdout.print("Secret access key (shown once, store it now; it cannot be shown again):")
    stdout.print(created["secret_access_key"], markup=False)


@app.command("list")
def list_access_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every access key (never a secret)."""
    with cli_errors(), open_access_keys(ctx) as backend:
        keys = backend.list()
    if as_json:
        print_json(keys)
        return
    print_table(COLUMNS, _rows(keys))


@app.command("show")
def show(ctx: typer.Context, key: KeyArgument, as_json: JsonOption = False) -> None:
    """Show one access key's metadata and grants."""
    with cli_errors(), open_access_keys(ctx) as backend:
        meta = backend.get(key)
    if as_json:
        print_json(meta)
        return
    rows = [[k, _grants_label(v) if k == "grants" else v] for k, v in meta.items()]
    print_table(["field", "value"], rows)


@app.command("revoke")
def revoke(ctx: typer.Context, key: KeyArgument, as_json: JsonOption = False) -> None:
    """Revoke an access key; running servers refuse it within a second."""
    with cli_errors(), open_access_keys(ctx) as backend:
        meta = backend.revoke(key)
    _show(meta, as_json, f"Access key {meta['access_key_id']} revoked.")


@app.command("grant")
def grant(
    ctx: typer.Context,
    key: KeyArgument,
    bucket_permission: Annotated[
        str, typer.Argument(metavar="BUCKET=PERMISSION", help="e.g. photos=read, backup-*=write")
    ],
    as_json: JsonOption = False,
) -> None:
    """Grant a bucket (read, write or admin), or change the permission on it."""
    with cli_errors():
        bucket, permission = parse_grant(bucket_permission)
        with open_access_keys(ctx) as backend:
            meta = backend.grant(key, bucket, permission)
    _show(meta, as_json, f"Access key {meta['access_key_id']} may now {permission} {bucket}.")


@app.command("revoke-grant")
def revoke_grant(
    ctx: typer.Context,
    key: KeyArgument,
    bucket: Annotated[str, typer.Argument(help="The bucket or pattern to take back.")],
    as_json: JsonOption = False,
) -> None:
    """Take back an access key's grant on a bucket."""
    with cli_errors():
        validate_bucket(bucket)
        with open_access_keys(ctx) as backend:
            meta = backend.revoke_grant(key, bucket)
    _show(meta, as_json, f"Access key {meta['access_key_id']} no longer has {bucket}.")
