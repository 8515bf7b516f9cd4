"""Real upstreams that report a request as their own parser read it, and a real authgate
gateway (the root app ``authgate serve`` runs, gateway built from settings) in front.

- ``wsgiref``: the standard library's WSGI server, echoing its environ's ``HTTP_*`` keys.
  It folds ``-`` and ``_`` into one and joins repeats with ``,``, as WSGI servers do.
- ``starlette``: a Starlette app under uvicorn, echoing ``request.headers.items()``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate.manage.keys import Actor
from authgate.proxy.gateway import gateway_from_settings
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.support import free_port, live_server

RULES: list[dict[str, Any]] = [
    {"method": "GET", "path": "/public/**", "public": True},
    {"method": "*", "path": "/**", "scopes": ["read"]},
]


def environ_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    seen = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    body = json.dumps({"environ": seen, "method": environ["REQUEST_METHOD"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgiref_upstream() -> Iterator[str]:
    server: WSGIServer = make_server(
        "127.0.0.1", free_port(), environ_echo, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def _headers_echo(request: Request) -> JSONResponse:
    return JSONResponse({"headers": request.headers.items(), "method": request.method})


@contextmanager
def starlette_upstream() -> Iterator[str]:
    app = Starlette(routes=[Route("/{path:path}", _headers_echo, methods=["GET", "POST"])])
    with live_server(app) as url:
        yield url


@dataclass
class Gatekeeper:
    url: str
    token: str  # scopes: read
    key_id: str


@contextmanager
def authgate_gateway(data_dir: Path, upstream: str, **settings: Any) -> Iterator[Gatekeeper]:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "rules": RULES,
        "access_log": False,
        "upstream_url": upstream,
        "localhost_bypass": "off",
    }
    values.update(settings)
    runtime = Runtime(load_settings(**values))
    runtime.start()
    try:
        reader = runtime.keys.create(Actor("test", source="test"), name="reader", scopes=["read"])
        app = build_root_app(runtime, downstream=gateway_from_settings(runtime.settings))
        with live_server(app, proxy_headers=False) as url:
            yield Gatekeeper(url, reader.token, reader.record.id)
    finally:
        runtime.close()


def wsgi_key(name: str) -> str:
    """The environ key a WSGI server gives a header name (PEP 3333, CGI's rule)."""
    return "HTTP_" + name.upper().replace("-", "_")
