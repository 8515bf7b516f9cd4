"""Fixtures: the CLI on the test's data folder and store, and a runtime to look with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from authgate.cli import app
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.api.service import Service, serve


@pytest.fixture
def local_cli(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI on the test's store, without a URL."""
    monkeypatch.setenv("AUTHGATE_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)

    return invoke


@pytest.fixture
def local(data_dir: Path, database_url: str) -> Iterator[Runtime]:
    """A runtime on the same store, to look at what the commands did."""
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=database_url))
    runtime.prepare_store()
    yield runtime
    runtime.store.close()


@pytest.fixture
def service(runtime: Runtime) -> Iterator[Service]:
    """A started runtime behind a live server, for the CLI's ``--url`` mode."""
    with serve(runtime) as live:
        yield live


@pytest.fixture
def remote_cli(service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI through ``service``'s API with a given token, its data folder unused."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    runner = CliRunner()

    def invoke(*args: str, token: str) -> Result:
        prefix = ["--data-dir", str(tmp_path / "unused"), "--url", service.base_url]
        return runner.invoke(app, [*prefix, "--token", token, *args])

    return invoke
