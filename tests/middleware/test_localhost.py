"""The bypass decision and the trusted-proxy client address, without a server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from authgate.errors import ConfigurationError
from authgate.facts import RequestFacts
from authgate.localhost import bypass_enabled, is_local_request, is_loopback, might_be_local
from authgate.settings import load_settings
from authgate.trusted_proxies import TrustedProxies


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:127.3.2.1", True),
        ("10.0.0.1", False),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::2", False),
        ("0.0.0.0", False),
        ("::", False),
        ("localhost", False),  # a name is not an address: the socket always gives one
        ("", False),
        (None, False),
        ("127.0.0.1.evil", False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def facts(peer: str | None, *headers: tuple[str, str]) -> RequestFacts:
    return RequestFacts(method="GET", path="/", headers=tuple(headers), peer=peer)


@pytest.mark.parametrize(
    "header",
    [
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("x-forwarded-host", "localhost"),
        ("via", "1.1 proxy"),
    ],
)
def test_a_forwarded_request_is_never_local(header: tuple[str, str]) -> None:
    # A real loopback connection of this process, so that only the header differs.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            peer, port = client.getsockname()
            server = listener.getsockname()

            def facts_of(*headers: tuple[str, str]) -> RequestFacts:
                return RequestFacts(
                    method="GET",
                    path="/",
                    headers=headers,
                    peer=peer,
                    peer_port=port,
                    server=server,
                )

            assert is_local_request(facts_of())
            assert not might_be_local(facts_of(header))
            assert not is_local_request(facts_of(header))


def test_host_header_and_spoofed_forwarding_do_not_make_a_remote_peer_local() -> None:
    assert not is_local_request(facts("192.0.2.2", ("host", "localhost")))
    assert not is_local_request(facts("192.0.2.2", ("x-forwarded-for", "127.0.0.1")))
    assert not is_local_request(facts(None, ("host", "127.0.0.1")))


@pytest.mark.parametrize(
    ("host", "auto"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.0.0.1,::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.2", False),
        ("127.0.0.1,0.0.0.0", False),
        ("myhost.example", False),
        ("::ffff:127.0.0.1", True),
    ],
)
def test_auto_bypass_only_when_every_listener_is_loopback(
    data_dir: Path, host: str, auto: bool
) -> None:
    settings = load_settings(data_dir=data_dir, host=host)
    assert settings.listens_on_loopback_only is auto
    assert bypass_enabled(settings, host) is auto
    # Middleware in someone else's server cannot see the listeners: auto stays off.
    assert bypass_enabled(settings, None) is False
    assert bypass_enabled(load_settings(data_dir=data_dir, localhost_bypass="on"), None)
    assert not bypass_enabled(load_settings(data_dir=data_dir, localhost_bypass="off"), host)


# -- trusted proxies ----------------------------------------------------------------------


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    proxies = TrustedProxies()
    request = facts("203.0.113.9", ("x-forwarded-for", "198.51.100.1"))
    assert proxies.client_address(request) == "203.0.113.9"
    assert proxies.client_address(facts("::ffff:203.0.113.9")) == "203.0.113.9"


def test_forwarded_for_is_read_from_the_right_through_trusted_hops() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    # The client wrote "1.2.3.4" itself; the edge proxy appended the real address.
    chain = ("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.1.1")
    assert proxies.client_address(facts("127.0.0.1", chain)) == "198.51.100.7"
    # Repeated headers are one list.
    split = facts("10.0.0.5", ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "10.9.9.9"))
    assert proxies.client_address(split) == "1.2.3.4"
    # An untrusted peer's headers count for nothing.
    assert proxies.client_address(facts("198.51.100.50", chain)) == "198.51.100.50"


def test_rfc7239_forwarded_wins_and_garbage_stops_the_walk() -> None:
    proxies = TrustedProxies(["127.0.0.0/8"])
    request = facts(
        "127.0.0.1",
        ("forwarded", 'for="[2001:db8::1]:4711";proto=https, for=127.0.0.5'),
        ("x-forwarded-for", "9.9.9.9"),
    )
    assert proxies.client_address(request) == "2001:db8::1"
    garbage = facts("127.0.0.1", ("x-forwarded-for", "not-an-ip, 127.0.0.9"))
    assert proxies.client_address(garbage) == "127.0.0.9"
    assert proxies.client_address(facts("127.0.0.1", ("x-real-ip", "198.51.100.2"))) == (
        "198.51.100.2"
    )


def test_bad_proxy_networks_are_refused(data_dir: Path) -> None:
    with pytest.raises(ConfigurationError):
        TrustedProxies(["10.0.0.0/33"])
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        load_settings(data_dir=data_dir, trusted_proxies="10.0.0.0/8, nonsense")
    assert load_settings(data_dir=data_dir, trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("off", None), ("", None), ("5/minute", "5/minute")]
)
def test_rate_limit_settings(data_dir: Path, value: str, expected: str | None) -> None:
    assert load_settings(data_dir=data_dir, failure_rate_limit=value).failure_rate_limit == expected


def test_bad_rate_limits_are_refused(data_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="key_rate_limit"):
        load_settings(data_dir=data_dir, key_rate_limit="lots")
