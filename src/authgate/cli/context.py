"""Settings and a local runtime for commands that work on the data folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from authgate.runtime import Runtime
from authgate.settings import Settings, load_settings

__all__ = ["CliState", "local_runtime", "state_of"]


@dataclass
class CliState:
    data_dir: Path | None = None
    config: Path | None = None
    # Client mode: a server's URL, and the token to call it with (else the stored one).
    url: str | None = None
    token: str | None = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, data_dir=self.data_dir, **overrides)


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
