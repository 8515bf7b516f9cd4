"""The README's Python snippet runs as written and protects what it says it does."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.responses import PlainTextResponse

from tests.foundation.helpers import AUTHGATE, clean_env
from tests.middleware.test_wsgi import wsgi_server
from tests.support import live_server

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_middleware_snippet_guards_reads_writes_and_approvals(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHGATE_DATA_DIR", str(data_dir))
    snippet = _python_blocks()[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, FastAPI)

    @app.get("/packages/{name}")
    def show(name: str) -> dict[str, str]:
        return {"name": name}

    with live_server(app) as url:
        admin_key = (data_dir / "admin.key").read_text().strip()
        assert httpx.get(f"{url}/packages/demo").json() == {"name": "demo"}
        refused = httpx.post(f"{url}/packages")
        assert refused.status_code == 401
        assert refused.json()["code"] == "missing_credentials"
        assert httpx.post(f"{url}/other").status_code == 401  # default deny
        approved = httpx.post(f"{url}/packages/demo/approve", headers={"X-API-Key": admin_key})
        assert approved.status_code == 404  # allowed through; the app has no such route


def test_the_readme_flask_snippet_guards_writes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHGATE_DATA_DIR", str(data_dir))
    namespace: dict[str, object] = {"__name__": __name__}  # Flask finds its root by it
    exec(compile(_python_blocks()[1], str(README), "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, Flask)

    @app.route("/packages", methods=["GET", "POST"])
    def packages() -> list[str]:
        return ["demo"]

    with wsgi_server(app) as url:
        assert httpx.get(f"{url}/packages").json() == ["demo"]
        refused = httpx.post(f"{url}/packages")
        assert refused.status_code == 401
        assert refused.json()["code"] == "missing_credentials"
        admin_key = (data_dir / "admin.key").read_text().strip()
        assert httpx.post(f"{url}/packages", headers={"X-API-Key": admin_key}).status_code == 200
    app.wsgi_app.close()  # type: ignore[attr-defined]


def test_the_readme_starlette_snippet_needs_a_credential_everywhere(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHGATE_DATA_DIR", str(data_dir))
    namespace: dict[str, object] = {}
    exec(compile(_python_blocks()[2], str(README), "exec"), namespace)
    app = namespace["app"]

    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app.router.add_route("/hello", hello)  # type: ignore[attr-defined]

    with live_server(app) as url:
        refused = httpx.get(f"{url}/hello")
        assert refused.status_code == 401
        admin_key = (data_dir / "admin.key").read_text().strip()
        allowed = httpx.get(f"{url}/hello", headers={"X-API-Key": admin_key})
        assert allowed.text == "hello"


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)


def test_the_quick_start_makes_a_key_with_the_readmes_own_scope(tmp_path: Path) -> None:
    """The quick start's commands as written, on a fresh data folder, with the installed
    ``authgate`` where the README has ``.venv/bin/authgate`` (``curl`` needs the server,
    which other tests run)."""
    [block] = [block for block in _shell_blocks() if "keys create" in block]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("curl")]
    script = "set -eu\n" + "\n".join(lines).replace(".venv/bin/authgate", AUTHGATE) + "\n"
    env = clean_env(AUTHGATE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Key key_" in done.stdout and "(ci-deploy) created" in done.stdout
    listed = subprocess.run(
        [AUTHGATE, "keys", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    [key] = json.loads(listed.stdout)
    assert key["scopes"] == ["packages:write"]
    # The README's promise about a typo, as it words it.
    typo = subprocess.run(
        [AUTHGATE, "keys", "create", "--name", "typo", "--scope", "pakages:write"],
        env={**env, "AUTHGATE_SCOPES": "packages:write"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert typo.returncode == 2
    promised = re.search(r"exits 2 with `(.*?)`", " ".join(README.read_text().split()))
    assert promised is not None and promised.group(1) in typo.stderr
