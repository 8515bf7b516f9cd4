"""``authgate serve --workers N``: N processes on one port, revocations immediate between them.

Which worker answers a connection is the kernel's choice; the tests find it out instead of
hoping: the server end of each connection is looked up in /proc/net/tcp and its socket
inode among the workers' open files.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from authgate.samehost import SameHostBroadcast
from tests.foundation.helpers import clean_env, run_authgate, serve_process
from tests.support import free_port, wait_until

WHOAMI = "/authgate/v1/whoami"
# Long enough that the store's change feed cannot be what carries a revocation here.
SLOW_POLL = "change_poll_seconds = 60\n"


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def _workers(pid: int) -> list[int]:
    """The serving children of ``authgate serve`` (multiprocessing adds a resource tracker
    only for some start methods; a worker is a child that holds a listening TCP socket)."""
    return [child for child in _children(pid) if _socket_inodes(child)]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        pass
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return inode
    return None


def _owner(worker_pids: list[int], server_port: int, conn: http.client.HTTPConnection) -> int:
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inode = _server_side_inode(server_port, client_port)
    assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
    owners = [pid for pid in worker_pids if inode in _socket_inodes(pid)]
    assert len(owners) == 1, owners
    return owners[0]


def _get(conn: http.client.HTTPConnection, path: str, token: str) -> int:
    conn.request("GET", path, headers={"X-API-Key": token})
    response = conn.getresponse()
    response.read()
    return response.status


@contextmanager
def _connections_on_every_worker(
    port: int, workers: list[int], token: str, *, most: int = 64
) -> Iterator[dict[int, list[http.client.HTTPConnection]]]:
    """Keep-alive connections until each worker holds at least one, each having served
    ``token`` once (so every worker has the key in its memory)."""
    by_worker: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    with ExitStack() as stack:
        for _ in range(most):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            stack.callback(conn.close)
            assert _get(conn, WHOAMI, token) == 200
            by_worker[_owner(workers, port, conn)].append(conn)
            if all(by_worker.values()):
                break
        assert all(by_worker.values()), f"every connection went to one worker: {by_worker}"
        yield by_worker


def _create_key(url_port: int, admin: str) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=30)
    try:
        body = json.dumps({"name": "worker-test", "scopes": ["read"]})
        conn.request(
            "POST",
            "/authgate/v1/tokens",
            body=body,
            headers={"X-API-Key": admin, "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert response.status == 201, payload
        return {"id": payload["id"], "token": payload["token"]}
    finally:
        conn.close()


def test_two_workers_serve_one_port_and_a_revoke_reaches_both_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "authgate.toml"
    config.write_text(SLOW_POLL)
    port = free_port()
    args = ("--data-dir", str(data), "--config", str(config), "--workers", "2")
    with serve_process(tmp_path / "serve", port, *args) as server:
        assert wait_until(lambda: len(_workers(server.process.pid)) == 2, timeout=60)
        workers = _workers(server.process.pid)
        admin = (data / "admin.key").read_text().strip()
        key = _create_key(port, admin)
        with _connections_on_every_worker(port, workers, key["token"]) as by_worker:
            first = next(iter(by_worker.values()))[0]
            revoke = f"/authgate/v1/tokens/{key['id']}"
            first.request("DELETE", revoke, headers={"X-API-Key": admin})
            revoked = first.getresponse()
            revoked.read()
            assert revoked.status == 200
            # No waiting: the worker that did not revoke it must already refuse it. One
            # request per worker: the kernel may put most connections on one worker, and
            # 20 refusals from one address would trip the failure limit (429) instead.
            for pid, conns in by_worker.items():
                assert _get(conns[0], WHOAMI, key["token"]) == 401, f"worker {pid} still accepts it"


def test_web_concurrency_sets_the_number_of_workers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(WEB_CONCURRENCY="2")
    with serve_process(tmp_path / "serve", free_port(), "--data-dir", str(data), env=env) as server:
        assert wait_until(lambda: len(_workers(server.process.pid)) == 2, timeout=60)
        assert "Workers: 2 processes" in server.output()[1]
        # The workers keep serve's connection limits: an oversized head is refused.
        conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        try:
            conn.request("GET", "/authgate/v1/health", headers={"X-Big": "x" * 100_000})
            assert conn.getresponse().status == 431
        finally:
            conn.close()


def test_a_local_cli_revoke_is_refused_by_the_running_server_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "authgate.toml"
    config.write_text(SLOW_POLL)
    port = free_port()
    args = ("--data-dir", str(data), "--config", str(config))
    with serve_process(tmp_path / "serve", port, *args):
        admin = (data / "admin.key").read_text().strip()
        key = _create_key(port, admin)
        for expected in (200, 401):  # first in the server's memory, then revoked there
            if expected == 401:
                revoked = run_authgate("--data-dir", str(data), "keys", "revoke", key["id"])
                assert revoked.returncode == 0, revoked.stderr
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                assert _get(conn, WHOAMI, key["token"]) == expected
            finally:
                conn.close()


def test_the_same_host_channel_reaches_every_listener_but_the_sender(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    heard: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    got = threading.Event()

    def listener(name: str) -> SameHostBroadcast:
        def on_revoked(key_id: str) -> None:
            heard[name].append(key_id)
            got.set()

        return SameHostBroadcast(folder, on_revoked)

    a, b, c = listener("a"), listener("b"), listener("c")
    for channel in (a, b, c):
        channel.start()
    try:
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        # publish returns once every listener has answered that it forgot the key.
        a.publish("key_123")
        assert heard["b"] == ["key_123"] and heard["c"] == ["key_123"]
        assert heard["a"] == []
        # A process that only publishes (the local CLI) needs no listener of its own.
        publisher = SameHostBroadcast(folder, lambda _key: None)
        publisher.publish("key_456")
        assert heard["a"] == ["key_456"] and heard["b"][-1] == "key_456"
        publisher.stop()
    finally:
        for channel in (a, b, c):
            channel.stop()
    assert [p.name for p in folder.iterdir()] == []


def test_a_dead_process_socket_is_cleared_and_does_not_stop_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    heard: list[str] = []
    alive = SameHostBroadcast(folder, heard.append)
    alive.start()
    # What a process that died without stop() leaves behind: a socket file nobody reads.
    left_behind = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    left_behind.bind(str(folder / "999999-deadbeef.sock"))
    left_behind.close()
    try:
        SameHostBroadcast(folder, lambda _key: None).publish("key_789")
        assert wait_until(lambda: heard == ["key_789"])
        assert not (folder / "999999-deadbeef.sock").exists()
        assert len(list(folder.iterdir())) == 1
    finally:
        alive.stop()


def test_a_process_that_never_answers_does_not_hold_up_a_revoke(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "run"
    heard: list[str] = []
    alive = SameHostBroadcast(folder, heard.append)
    alive.start()
    # A stopped process: its socket is bound and open, so messages queue, but nobody reads.
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck.bind(str(folder / "999998-stopped.sock"))
    try:
        with caplog.at_level(logging.WARNING, logger="authgate.samehost"):
            SameHostBroadcast(folder, lambda _key: None).publish("key_321")
        assert heard == ["key_321"]
        assert "1 process(es) did not answer" in caplog.text
        assert stuck.recv(256).endswith(b" key_321")
    finally:
        stuck.close()
        alive.stop()
    assert sorted(p.name for p in folder.iterdir()) == ["999998-stopped.sock"]
