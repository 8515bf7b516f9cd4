"""The server's root app and ``authgate serve``: service under the prefix, the rest downstream."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.types import Receive, Scope, Send

from authgate.policy import Policy, Rule, canonical_path
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app, service_rules
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import free_port, live_server


def raw_status(url: str, path: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_service_routes_and_downstream_share_one_policy(
    runtime_for: Callable[..., Runtime],
) -> None:
    rt = runtime_for()
    echo = Echo()
    token = new_key(rt, "caller", "items:write")
    with live_server(build_root_app(rt, downstream=echo.app, rules=RULES)) as url:
        with httpx.Client(base_url=url) as client:
            for public in ("/authgate/v1/health", "/authgate/v1/info", "/authgate/openapi.json",
                           "/authgate/docs"):  # fmt: skip
                assert client.get(public).status_code == 200, public
            assert client.get("/authgate/v1/whoami").status_code == 401
            me = client.get("/authgate/v1/whoami", headers={"X-API-Key": token})
            assert me.status_code == 200 and me.json()["scopes"] == ["items:write"]
            # Everything else is the downstream app's, under the operator's rules.
            assert client.get("/public/x").json()["path"] == "/public/x"
            assert client.get("/private/x").status_code == 401
            assert client.post("/items", headers={"X-API-Key": token}).status_code == 200
        # Spelling tricks do not move a request in or out of the reserved prefix.
        assert raw_status(url, "/AUTHGATE/v1/whoami") == 401
        assert raw_status(url, "//authgate/v1/whoami") == 401
        assert raw_status(url, "/authgate/v1/../v1/whoami") == 401
        assert raw_status(url, "/authgate/v1/%2e%2e/v1/whoami") == 401
        assert raw_status(url, "/public/../authgate/v1/whoami") == 401
        assert raw_status(url, "/authgate/../public/x") == 200
    assert "/public/x" in echo.reached


def test_the_service_rules() -> None:
    policy = Policy(service_rules("/authgate"))

    def access(method: str, path: str) -> str:
        return policy.match(method, canonical_path(path).match).access

    # Public to the middleware: these routes answer for themselves (login, forward auth).
    assert access("POST", "/authgate/v1/tokens") == "public"
    assert access("GET", "/authgate/v1/verify") == "public"
    assert access("POST", "/authgate/v1/verify") == "public"
    assert access("GET", "/authgate/docs/oauth2-redirect") == "public"
    # Everything else under the prefix needs a credential; routes check roles themselves.
    assert access("GET", "/authgate/v1/tokens") == "authenticated"
    assert access("DELETE", "/authgate/v1/tokens/current") == "authenticated"
    assert access("POST", "/authgate/v1/health") == "authenticated"
    assert access("GET", "/authgate") == "authenticated"


def test_without_downstream_the_rest_is_a_json_404(runtime_for: Callable[..., Runtime]) -> None:
    rt = runtime_for()
    with live_server(build_root_app(rt, rules=[Rule("*", "/**", public=True)])) as url:
        response = httpx.get(url + "/anything")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_the_downstream_lifespan_runs(runtime_for: Callable[..., Runtime]) -> None:
    events: list[str] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt = runtime_for()
    app = build_root_app(rt, downstream=downstream, rules=[Rule("*", "/**", public=True)])
    with live_server(app) as url:
        assert httpx.get(url + "/x").status_code == 204
        assert httpx.get(url + "/authgate/v1/health").status_code == 200
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def _serve(data_dir: Path, *flags: str) -> tuple[str, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    command = [str(Path(sys.executable).with_name("authgate")), "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(url + "/authgate/v1/health")
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200
        assert httpx.get(url + "/authgate/v1/whoami").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    return out, err


def test_serve_runs_the_root_app_with_its_own_access_log(data_dir: Path) -> None:
    _, err = _serve(data_dir)
    assert '"GET /authgate/v1/health" 200 Auth: no' in err
    assert '"GET /authgate/v1/whoami" 401 Auth: no' in err
    assert "HTTP/1.1" not in err  # uvicorn's own access log is off
    admin = (data_dir / "admin.key").read_text().strip()
    assert admin not in err
    _, quiet = _serve(data_dir, "--no-access-log")
    assert "/authgate/v1/health" not in quiet
