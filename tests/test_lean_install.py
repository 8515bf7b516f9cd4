"""The base install serves the middleware without a server, a client, or a Redis or
PostgreSQL driver, and a setting that needs a missing extra names it."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from authgate.cli import app

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "lean_child.py"


def _run_child(python: Path | str, data_dir: Path, *flags: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(CHILD), str(data_dir), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_the_middleware_imports_no_optional_module(tmp_path: Path) -> None:
    # Every extra is installed here: what is not imported was not needed.
    report = _run_child(sys.executable, tmp_path / "data")
    assert report["loaded"] == []
    assert (report["anonymous"], report["admin"]) == (401, 200)


def test_the_base_install_serves_the_middleware_and_names_missing_extras(
    tmp_path: Path,
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = {package["name"].lower() for package in json.loads(installed.stdout)}
    assert names.isdisjoint({"uvicorn", "aiohttp", "httpx", "redis", "psycopg", "typer"})

    report = _run_child(python, tmp_path / "data", "--missing")
    assert report["loaded"] == []
    assert (report["anonymous"], report["admin"]) == (401, 200)
    assert "install authgate[redis]" in report["missing"]["redis_url"]
    assert "install authgate[postgres]" in report["missing"]["database_url"]

    command = subprocess.run(
        [str(env_dir / "bin" / "authgate"), "keys", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert command.returncode == 2
    assert "install authgate[cli]" in command.stderr
    assert "Traceback" not in command.stderr


def test_serve_without_the_server_extra_names_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes ``import uvicorn`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), "serve"])
    assert result.exit_code == 2, result.output
    assert "install authgate[server]" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
