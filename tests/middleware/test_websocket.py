"""WebSockets are authenticated at the handshake; a refused one never reaches the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.runtime import Runtime
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import live_server


@pytest.fixture
def served(runtime_for: Callable[..., Runtime]) -> Iterator[tuple[str, Runtime, Echo]]:
    rt = runtime_for()
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)
    with live_server(app, ws="websockets-sansio") as url:
        yield url.replace("http://", "ws://"), rt, echo


def test_a_header_credential_opens_the_socket(served: tuple[str, Runtime, Echo]) -> None:
    url, rt, echo = served
    token = new_key(rt, "chatter", "chat")
    with connect(url + "/ws/room", additional_headers={"X-API-Key": token}) as ws:
        hello = json.loads(ws.recv())
        assert hello["principal"].startswith("key_")
        ws.send("hi")
        assert ws.recv() == "echo:hi"
    assert len(echo.ws_seen) == 1


def test_the_subprotocol_form_is_taken_and_never_echoed(
    served: tuple[str, Runtime, Echo],
) -> None:
    url, rt, echo = served
    token = new_key(rt, "browser", "chat")
    offered = ["authgate", f"authgate.bearer.{token}"]
    with connect(url + "/ws/room", subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "authgate"
        assert json.loads(ws.recv())["principal"].startswith("key_")
    seen = echo.ws_seen[-1]
    assert seen["subprotocols"] == ["authgate"]
    assert token not in json.dumps(seen["headers"])
    # The app's own choice wins, as long as it is not the credential.
    with connect(url + "/ws/room", subprotocols=["chat", f"authgate.bearer.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"


@pytest.mark.parametrize(
    ("headers", "protocols", "status"),
    [
        ({}, None, 401),
        ({"X-API-Key": "ag_nonsense"}, None, 401),
        ({}, ["authgate", "authgate.bearer.ag_nonsense"], 401),
        ({}, ["authgate.bearer.a", "authgate.bearer.b"], 401),
        # (No "Host" here: the client sends its own, and two are refused as ambiguous.)
        ({"X-Forwarded-For": "127.0.0.1"}, None, 401),
    ],
)
def test_refused_handshakes_never_reach_the_app(
    served: tuple[str, Runtime, Echo],
    headers: dict[str, str],
    protocols: list[str] | None,
    status: int,
) -> None:
    url, _, echo = served
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/ws/room", additional_headers=headers, subprotocols=protocols)  # type: ignore[arg-type]
    assert refused.value.response.status_code == status
    assert json.loads(refused.value.response.body or b"{}")["code"] in {
        "missing_credentials",
        "invalid_token",
    }
    assert echo.ws_seen == []


def test_missing_scope_is_403_at_the_handshake(served: tuple[str, Runtime, Echo]) -> None:
    url, rt, echo = served
    token = new_key(rt, "no-chat", "other")
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/ws/room", additional_headers={"Authorization": f"Bearer {token}"})
    assert refused.value.response.status_code == 403
    assert echo.ws_seen == []
    # A public WebSocket route needs nothing.
    with connect(url + "/ws/open") as ws:
        assert json.loads(ws.recv()) == {"principal": None}


def test_without_the_denial_extension_the_handshake_is_closed(
    runtime_for: Callable[..., Runtime],
) -> None:
    """A server without ``websocket.http.response`` gets ``websocket.close`` before accept."""
    reached: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    middleware = AuthgateMiddleware(app, rules=RULES, runtime=runtime_for())
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws/room",
        "raw_path": b"/ws/room",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
    }
    asyncio.run(middleware(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "missing_credentials"}]
    assert reached == []
