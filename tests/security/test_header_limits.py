"""``authgate serve`` bounds what a connection may hold before its request is read.

The attacks: one header of many megabytes (accepted and forwarded before), connections
that send an unfinished head forever or a byte at a time (each held open, its partial
head in memory), and one address opening connection after connection. Each runs here
against a real ``authgate serve`` process over raw sockets.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.support import free_port, wait_until

SOCKET_TIMEOUT = 20.0  # every wait below ends by then: a failure, never a hang
HEALTH = b"GET /authgate/v1/health HTTP/1.1\r\nHost: localhost\r\n"


@contextmanager
def _serve(tmp_path: Path, config: str) -> Iterator[ServeProcess]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    config_file = tmp_path / "authgate.toml"
    config_file.write_text(config)
    args = ["--data-dir", str(data_dir), "--config", str(config_file)]
    with serve_process(tmp_path / "serve", free_port(), *args, env=clean_env()) as served:
        yield served


# Three servers for the whole module (each start is slow on a busy machine).
@pytest.fixture(scope="module")
def small_heads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with _serve(tmp_path_factory.mktemp("small"), "max_header_bytes = 4096\n") as served:
        yield served


@pytest.fixture(scope="module")
def quick_heads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with _serve(tmp_path_factory.mktemp("quick"), "header_timeout = 1.5\n") as served:
        yield served


@pytest.fixture(scope="module")
def few_connections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The default header limit; five connections per address, heads given a minute."""
    config = "max_connections_per_client = 5\nheader_timeout = 60\n"
    with _serve(tmp_path_factory.mktemp("few"), config) as served:
        yield served


def _connect(served: ServeProcess, source: str = "127.0.0.1") -> socket.socket:
    port = int(served.url.rsplit(":", 1)[1])
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=SOCKET_TIMEOUT, source_address=(source, 0)
    )
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def _health_status(served: ServeProcess, source: str = "127.0.0.1") -> int:
    with _connect(served, source) as sock:
        sock.sendall(HEALTH + b"Connection: close\r\n\r\n")
        return _status(_read_until_closed(sock))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- size ------------------------------------------------------------------------------------


def test_a_head_over_the_limit_gets_431_and_one_under_it_is_served(
    small_heads: ServeProcess,
) -> None:
    served = small_heads
    with _connect(served) as sock:
        sock.sendall(HEALTH + b"X-Big: " + b"a" * 6000 + b"\r\n\r\n")
        response = _read_until_closed(sock)
    assert _status(response) == 431
    assert b"connection: close" in response.lower()
    assert b'"code": "headers_too_large"' in response
    # Many small headers add up the same way.
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(60))
    with _connect(served) as sock:
        sock.sendall(HEALTH + many + b"\r\n")
        assert _status(_read_until_closed(sock)) == 431
    with _connect(served) as sock:
        sock.sendall(HEALTH + b"X-Fine: " + b"a" * 3000 + b"\r\nConnection: close\r\n\r\n")
        assert _status(_read_until_closed(sock)) == 200


def test_a_refused_head_gets_one_answer_whatever_follows_it(small_heads: ServeProcess) -> None:
    """The rest of the read (an upgrade, a body) reaches neither the app nor the client."""
    with _connect(small_heads) as sock:
        upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        upgrade += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 5\r\n"
        sock.sendall(HEALTH + upgrade + b"X-Big: " + b"a" * 6000 + b"\r\n\r\nhello")
        response = _read_until_closed(sock)
    assert _status(response) == 431
    assert response.count(b"HTTP/1.1 ") == 1


def test_a_twenty_megabyte_header_is_refused_not_read(few_connections: ServeProcess) -> None:
    with _connect(few_connections) as sock:
        sent = 0
        refused = False
        try:
            sock.sendall(HEALTH + b"X-Huge: ")
            chunk = b"a" * 65536
            while sent < 20 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
            response = _read_until_closed(sock)
            refused = _status(response) == 431
        except (BrokenPipeError, ConnectionResetError):
            refused = True  # closed while the header was still coming
        assert refused
        assert sent < 20 * 1024 * 1024


# -- time ------------------------------------------------------------------------------------


def test_a_trickling_head_is_cut_off_after_the_header_timeout(quick_heads: ServeProcess) -> None:
    with _connect(quick_heads) as sock:
        sock.sendall(HEALTH)
        sock.settimeout(0.25)
        answer = b""
        closed = False
        # One header line every quarter second, for up to 40 s: an open head forever.
        for index in range(160):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(b"X-Slow-%d: x\r\n" % index)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                continue
            if not chunk:
                closed = True
                break
            answer += chunk
        assert closed, "the trickling connection stayed open"
        assert _status(answer) == 408


def test_an_idle_new_connection_is_closed_after_the_header_timeout(
    quick_heads: ServeProcess,
) -> None:
    with _connect(quick_heads) as sock:
        assert sock.recv(65536) == b""  # closed without a word, before SOCKET_TIMEOUT


def test_after_a_response_the_next_head_has_the_same_deadline(quick_heads: ServeProcess) -> None:
    with _connect(quick_heads) as sock:
        sock.sendall(HEALTH + b"\r\n")
        first = b""
        while not first.endswith(b"}"):  # the health answer's JSON body, whole
            chunk = sock.recv(65536)
            assert chunk, "closed before the first answer"
            first += chunk
        assert _status(first) == 200
        sock.sendall(b"GET /authgate/v1/health HTTP/1.1\r\n")  # and nothing more
        assert _status(_read_until_closed(sock)) == 408


# -- connections per address ----------------------------------------------------------------


def test_connections_beyond_the_per_address_cap_are_refused(
    few_connections: ServeProcess,
) -> None:
    served = few_connections
    with ExitStack() as held:
        holders = [held.enter_context(_connect(served)) for _ in range(5)]
        # Each open connection is counted once the server has accepted it.
        assert wait_until(lambda: _refused(served), timeout=10)
        with _connect(served) as extra:
            response = _read_until_closed(extra)
        assert _status(response) == 503
        assert b'"code": "too_many_connections"' in response
        # Another address is served meanwhile.
        assert _health_status(served, "127.0.0.2") == 200
        # A held connection ends: the address may connect again.
        holders[0].close()
        assert wait_until(lambda: not _refused(served), timeout=10)
        assert _health_status(served) == 200


def _refused(served: ServeProcess) -> bool:
    with _connect(served) as sock:
        sock.sendall(HEALTH + b"Connection: close\r\n\r\n")
        try:
            return _status(_read_until_closed(sock)) == 503
        except ConnectionResetError:
            return True


# -- memory ----------------------------------------------------------------------------------


def test_unfinished_heads_keep_memory_bounded(few_connections: ServeProcess) -> None:
    """Each connection tries to park 32 MB of unfinished head; unlimited, the server
    would hold all of it (over 128 MB). Bounded, each is cut at the limit."""
    per_connection = 32 * 1024 * 1024
    connections = 4
    served = few_connections
    with ExitStack() as held:
        pid = served.process.pid
        before = _rss_kib(pid)
        socks = [held.enter_context(_connect(served)) for _ in range(connections)]
        sent = [0] * connections

        def flood(index: int) -> None:
            sock = socks[index]
            chunk = b"a" * 65536
            try:
                sock.sendall(HEALTH + b"X-Flood: ")
                while sent[index] < per_connection:
                    sock.sendall(chunk)
                    sent[index] += len(chunk)
            except OSError:
                pass  # refused and closed: the point

        threads = [threading.Thread(target=flood, args=(i,)) for i in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        # Sampled while every connection is still open on this side.
        growth_mib = (_rss_kib(pid) - before) / 1024
        assert growth_mib < 32, f"server RSS grew by {growth_mib:.0f} MiB"
        assert all(count < per_connection for count in sent)
