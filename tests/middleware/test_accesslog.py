"""One access-log line per request, HTTP and WebSocket; never a secret in it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from authgate.accesslog import ACCESS_LOGGER
from authgate.adapters.asgi import AuthgateMiddleware
from authgate.runtime import Runtime
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import live_server, wait_until


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]


def test_text_lines(runtime_for: Callable[..., Runtime], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    rt = runtime_for(localhost_bypass="on")
    token = new_key(rt, "logged", "items:write")
    key_id = rt.keys.list()[0].id
    echo = Echo()
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)) as url:
        httpx.post(url + "/items?token=" + token, headers={"X-API-Key": token})
        httpx.get(url + "/private/x", headers={"Authorization": f"Bearer {token}x"})
        httpx.get(url + "/admin/x")
        httpx.get(url + "/public/a%2fb")
        assert wait_until(lambda: len(access_lines(caplog)) == 4)
    written, refused, local, bad_path = access_lines(caplog)
    assert written.startswith('127.0.0.1 "POST /items" 200 Auth: yes key=' + key_id + " ")
    assert written.endswith("ms")
    assert refused.startswith('127.0.0.1 "GET /private/x" 401 Auth: no key=- ')
    assert local.startswith('127.0.0.1 "GET /admin/x" 200 Auth: local key=local ')
    assert bad_path.startswith('127.0.0.1 "GET /public/a%2fb" 400 Auth: no key=- ')
    for line in access_lines(caplog):
        assert token not in line and token[:-1] not in line
        assert "?" not in line  # query strings are never logged


def test_json_lines_and_websockets(
    runtime_for: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    rt = runtime_for(access_log_format="json", trusted_proxies="127.0.0.1")
    token = new_key(rt, "socket", "chat")
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)
    with live_server(app, proxy_headers=False) as url:
        ws_url = url.replace("http://", "ws://")
        with connect(
            ws_url + "/ws/room",
            subprotocols=[Subprotocol("authgate"), Subprotocol(f"authgate.bearer.{token}")],
        ) as ws:
            ws.recv()
            ws.send("x")
            ws.recv()
        with pytest.raises(InvalidStatus):
            connect(ws_url + "/ws/room")
        httpx.get(url + "/public/x", headers={"X-Forwarded-For": "198.51.100.4"})
        assert wait_until(lambda: len(access_lines(caplog)) == 3)
    lines = [json.loads(line) for line in access_lines(caplog)]
    accepted = next(line for line in lines if line["status"] == 101)
    assert accepted["method"] == "WS" and accepted["protocol"] == "websocket"
    assert accepted["auth"] == "yes" and accepted["key_id"].startswith("key_")
    refused = next(line for line in lines if line["status"] == 401)
    assert refused["path"] == "/ws/room" and refused["auth"] == "no"
    public = next(line for line in lines if line["path"] == "/public/x")
    # The trusted proxy's forwarded address names the client in the log.
    assert public["client"] == "198.51.100.4"
    assert set(public) == {
        "client", "method", "path", "status", "auth", "key_id", "duration_ms", "protocol"
    }  # fmt: skip
    assert all(token not in json.dumps(line) for line in lines)


def test_the_log_can_be_switched_off(
    runtime_for: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    rt = runtime_for(access_log=False)
    with live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt)) as url:
        assert httpx.get(url + "/public/x").status_code == 200
    assert access_lines(caplog) == []


def test_requests_answered_from_memory_are_logged_alike(
    runtime_for: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    """The first request of a path takes the general path; the next ones, whose route and
    key are remembered, take the hot path: every one is logged the same way."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    rt = runtime_for()
    token = new_key(rt, "repeat", "items:write")
    key_id = rt.keys.list()[0].id
    echo = Echo()
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)) as url:
        with httpx.Client(base_url=url) as client:
            answers = [client.post("/items", headers={"X-API-Key": token}) for _ in range(3)]
        assert wait_until(lambda: len(access_lines(caplog)) == 3)
    assert [a.json()["principal"] for a in answers] == [key_id] * 3
    for line in access_lines(caplog):
        assert line.startswith('127.0.0.1 "POST /items" 200 Auth: yes key=' + key_id + " ")
