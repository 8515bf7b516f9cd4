"""Fixtures for the gateway: a live upstream and a live gateway in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from authgate.principal import Principal
from authgate.proxy.gateway import Gateway
from tests.gateway.upstream import make_upstream
from tests.support import live_server

TOKEN = "ag_" + "t" * 40
PRINCIPAL = Principal(
    id="key_0123456789abcdef",
    name="ci-deploy",
    kind="api_key",
    scopes=frozenset({"packages:write", "packages:read"}),
)


class StandInAuth:
    """What the authgate middleware does for the gateway, reduced to one known token:
    a valid X-API-Key puts the principal in the scope, anything else is refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope["headers"])
            if headers.get(b"x-api-key") == TOKEN.encode():
                scope["authgate.principal"] = PRINCIPAL
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            elif not scope["path"].startswith("/public"):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"no"})
                return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with live_server(make_upstream()) as url:
        yield url


@pytest.fixture
def make_gateway() -> Iterator[Any]:
    """Start a gateway (behind the stand-in) with any options; stopped after the test."""
    stack: list[Any] = []

    def factory(upstream: str, **options: Any) -> str:
        server = live_server(StandInAuth(Gateway(upstream, **options)), proxy_headers=False)
        stack.append(server)
        return server.__enter__()

    yield factory
    for server in reversed(stack):
        server.__exit__(None, None, None)


@pytest.fixture
def gateway_url(make_gateway: Any, upstream_url: str) -> str:
    url: str = make_gateway(upstream_url)
    return url
