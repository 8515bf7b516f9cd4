"""Settings and a local runtime for commands that work on the data folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from platformdirs import user_config_dir

from authgate.errors import InvalidRequest
from authgate.runtime import Runtime
from authgate.settings import Settings, load_settings

__all__ = ["CliState", "local_only", "local_runtime", "state_of"]


@dataclass
class CliState:
    data_dir: Path | None = None
    config: Path | None = None
    # Client mode: a server's URL, and the token to call it with (else the stored one).
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    # The CA bundle to trust for an https --url (a self-signed server's certificate).
    cacert: Path | None = None
    # Where the client keeps what `authgate login` stored (never the data folder: a
    # teammate's laptop has no server data, and a server's folder is not a client's).
    config_dir: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, data_dir=self.data_dir, **overrides)

    def credentials_file(self) -> Path:
        folder = self.config_dir or Path(user_config_dir("authgate", appauthor=False))
        return folder / "credentials.json"


def state_of(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


@contextmanager
def local_runtime(ctx: typer.Context) -> Iterator[Runtime]:
    """A runtime on the local data folder or database, schema brought up to date."""
    runtime = Runtime(state_of(ctx).settings())
    try:
        runtime.prepare_store()
        yield runtime
    finally:
        runtime.store.close()


def local_only(ctx: typer.Context, command: str) -> None:
    """Refuse client mode for ``command``: it works on files of the server's host."""
    if state_of(ctx).url is not None:
        raise InvalidRequest(
            f"{command} works on the server's own data folder: run it on that "
            "host, without --url / AUTHGATE_URL."
        )
