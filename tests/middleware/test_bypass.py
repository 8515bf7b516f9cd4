"""The localhost bypass on real sockets: loopback peers only, never when forwarded."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import httpx
import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import live_server

SPOOFS = [
    {"X-Forwarded-For": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
    {"Host": "localhost"},
    {"Host": "127.0.0.1", "X-Forwarded-For": "::1"},
]


def non_loopback_address() -> str | None:
    """This machine's own outward address, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_loopback_peer_passes_as_local(runtime_for: Callable[..., Runtime], host: str) -> None:
    echo = Echo()
    rt = runtime_for(localhost_bypass="on")
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt), host=host) as url:
        body = httpx.get(url + "/admin/x").json()
        assert (body["principal"], body["kind"]) == ("local", "local")
        # A credential, when sent, is used: a local client sees what its key may do.
        token = new_key(rt, "plain", "other")
        assert httpx.get(url + "/admin/x", headers={"X-API-Key": token}).status_code == 403
        # Forwarded requests are never local, whoever the socket peer is.
        for spoof in SPOOFS[:3]:
            assert httpx.get(url + "/admin/x", headers=spoof).status_code == 401


def test_auto_turns_the_bypass_on_for_loopback_listeners_only(
    runtime_for: Callable[..., Runtime],
) -> None:
    echo = Echo()
    rt = runtime_for(localhost_bypass="auto")
    told = AuthgateMiddleware(echo.app, rules=RULES, runtime=rt, listen_host="127.0.0.1")
    wide = AuthgateMiddleware(echo.app, rules=RULES, runtime=rt, listen_host="0.0.0.0")
    unknown = AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)
    with live_server(told) as url:
        assert httpx.get(url + "/admin/x").json()["kind"] == "local"
    for app in (wide, unknown):
        with live_server(app) as url:
            assert httpx.get(url + "/admin/x").status_code == 401
    # `authgate serve` knows its listeners: the host setting.
    served = runtime_for(localhost_bypass="auto", host="127.0.0.1")
    with live_server(build_root_app(served, downstream=echo.app, rules=RULES)) as url:
        assert httpx.get(url + "/admin/x").json()["kind"] == "local"
    served_wide = runtime_for(localhost_bypass="auto", host="0.0.0.0")
    with live_server(build_root_app(served_wide, downstream=echo.app, rules=RULES)) as url:
        assert httpx.get(url + "/admin/x").status_code == 401


def test_a_remote_peer_is_never_local_whatever_its_headers_say(
    runtime_for: Callable[..., Runtime],
) -> None:
    """A real socket from this machine's non-loopback address, bypass forced on."""
    address = non_loopback_address()
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=runtime_for(localhost_bypass="on"))
    if address is not None:
        with live_server(app, host=address) as url:
            for spoof in [{}, *SPOOFS]:
                response = httpx.get(url + "/admin/x", headers=spoof)
                assert response.status_code == 401, spoof
    else:  # no outward address here: the same request in-process, from a remote client
        asyncio.run(_remote_in_process(app))
    assert echo.reached == []


async def _remote_in_process(app: AuthgateMiddleware) -> None:
    transport = httpx.ASGITransport(app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for spoof in [{}, *SPOOFS]:
            assert (await client.get("/admin/x", headers=spoof)).status_code == 401


def test_in_process_remote_client(runtime_for: Callable[..., Runtime]) -> None:
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=runtime_for(localhost_bypass="on"))
    asyncio.run(_remote_in_process(app))

    async def claimed_loopback() -> None:
        # A loopback address with no socket behind it: no owner to find, so not local.
        transport = httpx.ASGITransport(app, client=("::ffff:127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            assert (await client.get("/admin/x")).status_code == 401

    asyncio.run(claimed_loopback())


def test_the_bypass_never_opens_authgates_own_routes(runtime_for: Callable[..., Runtime]) -> None:
    echo = Echo()
    rt = runtime_for(localhost_bypass="on")
    with live_server(build_root_app(rt, downstream=echo.app, rules=RULES)) as url:
        assert httpx.get(url + "/admin/x").json()["kind"] == "local"
        for path in ("/authgate/v1/whoami", "/AUTHGATE/v1/whoami", "//authgate/v1/whoami"):
            assert httpx.get(url + path).status_code == 401, path
