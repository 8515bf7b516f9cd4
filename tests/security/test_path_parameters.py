"""A ``;`` in a path segment reads two ways: Starlette and most Python servers keep it,
Tomcat, Jetty and Spring drop the segment's ``;…`` before routing. A path whose two
readings would pick different rules is refused in the ASGI and WSGI middleware and in
verify; one whose readings agree passes as before."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authgate import AuthgateMiddleware, AuthgateWSGIMiddleware, Rule
from authgate.runtime import Runtime

RULES = [Rule("*", "/admin/**", role="admin"), Rule("GET", "/**", public=True)]
TWO_READINGS = ["/admin;/x", "/admin;jsessionid=1/x", "/admin%3b/x", "/admin%3B/x", "/admin;"]
ONE_READING = ["/a;x=1/b", "/docs;v=2"]


def _hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("served")


def _get(app: Any, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get(path)

    return asyncio.run(go())


@pytest.fixture
def asgi(runtime: Runtime) -> Any:
    app = Starlette(routes=[Route("/{path:path}", _hello)])
    return AuthgateMiddleware(app, rules=RULES, runtime=runtime)


@pytest.mark.parametrize("path", TWO_READINGS)
def test_asgi_refuses_a_path_whose_readings_pick_different_rules(asgi: Any, path: str) -> None:
    response = _get(asgi, path)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_path"
    assert "served" not in response.text


@pytest.mark.parametrize("path", ONE_READING)
def test_asgi_passes_a_path_whose_readings_agree(asgi: Any, path: str) -> None:
    response = _get(asgi, path)
    assert (response.status_code, response.text) == (200, "served")


@pytest.mark.parametrize("path", ["/admin/x", "/admin/x;y"])
def test_asgi_still_guards_the_admin_paths(asgi: Any, path: str) -> None:
    assert _get(asgi, path).status_code == 401


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


@pytest.mark.parametrize(
    ("path", "status"),
    [("/admin;/x", 400), ("/admin;jsessionid=1/x", 400), ("/a;x=1/b", 200), ("/admin/x", 401)],
)
def test_wsgi_refuses_the_same_paths(runtime: Runtime, path: str, status: int) -> None:
    app = AuthgateWSGIMiddleware(_wsgi_app, rules=RULES, runtime=runtime)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "RAW_URI": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "app.test",
        "SERVER_PORT": "80",
        "HTTP_HOST": "app.test",
        "REMOTE_ADDR": "203.0.113.7",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        seen.append(status)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    assert seen[0].startswith(str(status)), (seen, body)
    assert (b"served" in body) is (status == 200)
