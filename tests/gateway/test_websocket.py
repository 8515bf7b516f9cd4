"""WebSockets through the gateway: frames both ways, subprotocols, close codes."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.gateway.conftest import TOKEN
from tests.gateway.upstream import EVENTS
from tests.support import wait_until

AUTH = {"X-API-Key": TOKEN}


def ws_url(http_url: str, path: str = "/ws") -> str:
    return "ws" + http_url.removeprefix("http") + path


def test_echo_with_a_valid_key(gateway_url: str) -> None:
    with connect(ws_url(gateway_url), additional_headers=AUTH, max_size=None) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv() == b"\x00\x01binary\xff"
        big = "x" * 3_000_000
        ws.send(big)
        assert ws.recv() == big


def test_refused_without_a_key(gateway_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url(gateway_url)):
            pass
    assert refused.value.response.status_code == 403


def test_upstream_sees_identity_not_credentials(gateway_url: str) -> None:
    headers = {**AUTH, "X-Authgate-Key-Id": "admin", "Authorization": f"Bearer {TOKEN}"}
    with connect(ws_url(gateway_url), additional_headers=headers) as ws:
        ws.send("headers")
        seen: dict[str, list[str]] = {}
        for name, value in json.loads(ws.recv())["headers"]:
            seen.setdefault(name, []).append(value)
    assert seen["x-authgate-key-id"] == ["key_0123456789abcdef"]
    assert seen["x-authgate-scopes"] == ["packages:read,packages:write"]
    assert "x-api-key" not in seen
    assert "authorization" not in seen
    assert seen["x-forwarded-for"] == ["127.0.0.1"]


def test_subprotocol_is_negotiated_with_the_upstream(gateway_url: str) -> None:
    with connect(
        ws_url(gateway_url),
        additional_headers=AUTH,
        subprotocols=[Subprotocol("other"), Subprotocol("chat")],
    ) as ws:
        assert ws.subprotocol == "chat"
        ws.send("ping")
        assert ws.recv() == "ping"


def test_upstream_close_code_reaches_the_client(gateway_url: str) -> None:
    with connect(ws_url(gateway_url), additional_headers=AUTH) as ws:
        ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "bye"


def test_client_close_code_reaches_the_upstream(gateway_url: str) -> None:
    with connect(ws_url(gateway_url), additional_headers=AUTH) as ws:
        ws.send("one")
        assert ws.recv() == "one"
        ws.close(code=4002, reason="done here")
    assert wait_until(lambda: ("ws-closed", 4002) in EVENTS)


def test_upstream_down_refuses_the_handshake(make_gateway: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    url = make_gateway(f"http://127.0.0.1:{dead}")
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url(url), additional_headers=AUTH):
            pass
    assert refused.value.response.status_code == 502
    assert json.loads(refused.value.response.body or b"{}")["code"] == "bad_gateway"


def test_many_sessions_in_a_row(gateway_url: str) -> None:
    for index in range(20):
        with connect(ws_url(gateway_url), additional_headers=AUTH) as ws:
            ws.send(str(index))
            assert ws.recv() == str(index)


def test_an_upstream_that_vanishes_closes_the_client_with_1014(make_gateway: Any) -> None:
    import base64
    import hashlib
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def accept_then_vanish() -> None:
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(65536).decode("latin-1")
            key = next(
                line.split(":", 1)[1].strip()
                for line in request.split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            magic = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            accept = base64.b64encode(hashlib.sha1((key + magic).encode()).digest()).decode()
            conn.sendall(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
            # Then gone: no closing handshake.

    thread = threading.Thread(target=accept_then_vanish, daemon=True)
    thread.start()
    url = make_gateway(f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        with connect(ws_url(url), additional_headers=AUTH) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1014
    finally:
        thread.join(timeout=5)
        listener.close()
