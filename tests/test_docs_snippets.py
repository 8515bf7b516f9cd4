"""Every code block in docs/middleware.md runs, and does what the page says."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from authgate.accesslog import ACCESS_LOGGER, AccessLog
from authgate.localhost import _named, describe_bypass
from authgate.policy import Rule, rules_from_config
from authgate.settings import load_settings
from tests.support import live_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "middleware.md"
BLOCK = re.compile(r"<!-- test: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def snippets() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = {name: code for name, _lang, code in BLOCK.findall(text)}
    # Every fenced block is tagged, so none escapes the test.
    assert len(found) == text.count("\n```") // 2
    return found


SNIPPETS = snippets()


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The snippets read AUTHGATE_* like any app: point them at the test's data folder."""
    monkeypatch.setenv("AUTHGATE_DATA_DIR", str(data_dir))
    return {k: v for k, v in os.environ.items() if k != "AUTHGATE_TOKEN"}


@pytest.fixture
def token(env: dict[str, str]) -> str:
    """A key made with the page's own command."""
    words = shlex.split(SNIPPETS["create-key"].strip())
    # Leading NAME=value words are the environment, as a shell reads them.
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env = {**env, name: value}
    assert words[0] == "authgate"
    executable = str(Path(sys.executable).with_name("authgate"))
    done = subprocess.run(
        [executable, *words[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def run(name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"snippet_{name.replace('-', '_')}"}
    exec(compile(SNIPPETS[name], f"{DOC}:{name}", "exec"), namespace)
    return namespace


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi() -> Iterator[Any]:
    servers: list[WSGIServer] = []

    def serve(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_fastapi(token: str) -> None:
    app = run("fastapi")["app"]
    with live_server(app) as url:
        assert httpx.get(url + "/packages").json() == ["demo"]
        assert httpx.post(url + "/packages").status_code == 401
        created = httpx.post(url + "/packages", headers={"X-API-Key": token})
        assert created.json() == {"submitted_by": "ci-publisher"}
        # No rule names /openapi.json: default deny.
        denied = httpx.get(url + "/openapi.json", headers={"X-API-Key": token})
        assert denied.json() == {"detail": "No rule allows this request.", "code": "forbidden"}


def test_fastapi_docs_need_a_rule(env: dict[str, str]) -> None:
    from fastapi import FastAPI

    from authgate.adapters.asgi import AuthgateMiddleware

    docs_rules = run("docs-rules")["DOCS_RULES"]
    closed = FastAPI()
    closed.add_middleware(AuthgateMiddleware, rules=[Rule("GET", "/packages/**", public=True)])
    with live_server(closed) as url:
        for path in ("/docs", "/openapi.json"):
            refused = httpx.get(url + path)
            assert refused.status_code == 401, path
            assert refused.json()["code"] == "missing_credentials"
    opened = FastAPI()
    opened.add_middleware(AuthgateMiddleware, rules=[*docs_rules])
    with live_server(opened) as url:
        page = httpx.get(url + "/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        assert httpx.get(url + "/openapi.json").json()["openapi"].startswith("3.")
        assert httpx.get(url + "/docs/oauth2-redirect").status_code == 200
        assert httpx.get(url + "/packages").status_code == 401  # still default deny


def test_flask(token: str, wsgi: Any) -> None:
    app = run("flask")["app"]
    try:
        url = wsgi(app)
        assert httpx.get(url + "/packages").json() == ["demo"]
        assert httpx.post(url + "/packages").status_code == 401
        created = httpx.post(url + "/packages", headers={"Authorization": f"Bearer {token}"})
        assert created.json() == {"submitted_by": "ci-publisher"}
    finally:
        app.wsgi_app.close()


def test_starlette(token: str) -> None:
    app = run("starlette")["app"]
    with live_server(app) as url:
        assert httpx.get(url + "/hello").status_code == 401
        assert httpx.get(url + "/hello", headers={"X-API-Key": token}).json() == {
            "hello": "ci-publisher"
        }


def test_websocket_client(token: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from authgate.adapters.asgi import AuthgateMiddleware

    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.authgate_principal.name)
        await websocket.close()

    app = AuthgateMiddleware(Starlette(routes=[WebSocketRoute("/ws", hello)]),
                             rules=[Rule("GET", "/ws")])  # fmt: skip
    open_socket = run("websocket")["open_socket"]
    with live_server(app) as url, open_socket(url.replace("http", "ws") + "/ws", token) as ws:
        assert ws.subprotocol == "authgate"
        assert ws.recv() == "ci-publisher"


def test_rules_in_code_and_in_toml_are_the_same(tmp_path: Path, data_dir: Path) -> None:
    rules = run("rules")["RULES"]
    config = tmp_path / "authgate.toml"
    config.write_text(SNIPPETS["rules-toml"], encoding="utf-8")
    assert rules_from_config(load_settings(config, data_dir=data_dir).rules) == rules


@pytest.mark.parametrize("name", ["bypass-toml", "limits-toml", "log-toml"])
def test_settings_blocks_load(name: str, tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(SNIPPETS[name], encoding="utf-8")
    settings = load_settings(config, data_dir=data_dir)
    if name == "limits-toml":
        assert settings.failure_rate_limit == "20/minute"
        assert settings.key_rate_limit == "100/second"
        assert settings.trusted_proxies == ("10.0.0.0/8",)
    if name == "log-toml":
        assert settings.access_log_format == "json"


def test_the_log_line_shown_is_the_shape_written(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    AccessLog().record(
        method="POST",
        path="/packages",
        status=201,
        auth="yes",
        key_id="key_Zr0cY9nJ3pQ1a2Bc",
        duration_ms=3.21,
        client="127.0.0.1",
    )
    assert caplog.records[-1].getMessage() == SNIPPETS["log-line"].strip()


def test_bypass_log_line_is_the_one_the_middleware_writes() -> None:
    # The page's user is uid 1000, "dev"; this machine may name uid 1000 otherwise.
    written = describe_bypass(True, frozenset({0, 1000})).replace(_named(1000), "uid 1000 (dev)")
    assert written == SNIPPETS["bypass-log-line"].strip()
