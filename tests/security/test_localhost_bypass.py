"""The localhost bypass behind a same-host proxy, and from other users' sockets.

The attack: ``authgate serve`` on 127.0.0.1 with the default ``auto`` bypass, behind a
plain nginx ``proxy_pass`` that adds no forwarding header. Every client of that nginx
used to arrive from a loopback peer with no forwarding header, so passed as ``local``,
with the admin role. A loopback peer is now local only when its socket belongs to the
server's own OS user or root, and nginx's worker runs as ``nobody``.

The suite runs as root, so "the same user" is root: every refusal here is proved
against a client (an nginx worker, a child process) that runs as another uid, and the
same request from a root-owned socket is shown to pass.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import HTTPServer
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse

import httpx
import pytest

from authgate.adapters.wsgi import AuthgateWSGIMiddleware, principal_of
from authgate.facts import RequestFacts
from authgate.localhost import describe_bypass, is_local_request
from authgate.peercred import SocketOwners, SocketRow, endpoint, parse_row
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.gateway.upstream import make_upstream
from tests.middleware.apps import RULES, Echo
from tests.support import free_port, live_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# The system's interpreter: readable by any user, unlike a virtualenv under /root.
SYSTEM_PYTHON = "/usr/bin/python3"
OTHER_USER = pwd.getpwnam("nobody")
OTHER_GROUP = grp.getgrgid(OTHER_USER.pw_gid).gr_name

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root, to run a client as another user (CI runs as root)"
)


# -- the client, run as root or as nobody --------------------------------------------------

# One GET over a raw socket; prints the status code. ``family``: 4, 6 or "mapped" (an
# IPv6 socket to an IPv4 server, which the kernel lists in tcp6 as ::ffff:a.b.c.d).
CLIENT = r"""
import socket, sys
family, source, host, port, path = sys.argv[1:6]
if family == "mapped":
    sock = socket.socket(socket.AF_INET6)
    host = "::ffff:" + host
elif family == "6":
    sock = socket.socket(socket.AF_INET6)
else:
    sock = socket.socket(socket.AF_INET)
sock.settimeout(20)
if source:
    sock.bind((source, 0))
sock.connect((host, int(port)))
sock.sendall(f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode())
reply = b""
while b"\r\n" not in reply:
    chunk = sock.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.split(b" ", 2)[1].decode())
"""


def status_from(
    host: str, port: int, path: str, *, family: str = "4", source: str = "", other: bool
) -> int:
    """A GET from a child process: as ``nobody`` when ``other``, else as this user."""
    identity = (
        {"user": OTHER_USER.pw_uid, "group": OTHER_USER.pw_gid, "extra_groups": []} if other else {}
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", CLIENT, family, source, host, str(port), path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
        **identity,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


# -- the attack: nginx in front, worker as nobody ------------------------------------------

NGINX_CONFIG = """
daemon off;
user {user} {group};
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        # The plain reverse proxy of the issue: no X-Forwarded-For, no X-Real-IP.
        location / {{
            proxy_pass {authgate};
        }}
    }}
}}
"""


@dataclass
class Served:
    authgate: ServeProcess
    nginx: str
    nginx_workers: list[int]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # the effective uid
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if os.geteuid() != 0:
        pytest.skip("needs root: nginx's master must start its worker as another user")
    if not Path(NGINX).is_file():
        pytest.fail(f"nginx is not installed ({NGINX}); run ./scripts/test, which installs it")
    workdir = tmp_path_factory.mktemp("bypass")
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    # nginx's own files, in a folder the worker may enter (pytest's are 0700).
    nginx_dir = Path(tempfile.mkdtemp(prefix="authgate-bypass-nginx-"))
    nginx_dir.chmod(0o755)
    port = free_port()
    args = ["--host", "127.0.0.1", "--data-dir", str(data_dir), "--no-access-log"]
    try:
        with (
            live_server(make_upstream()) as upstream,
            # The default bypass ("auto"), on since the server listens on loopback only.
            serve_process(
                workdir, free_port(), *args, "--upstream", upstream, env=clean_env()
            ) as authgate,
        ):
            conf = nginx_dir / "nginx.conf"
            conf.write_text(
                NGINX_CONFIG.format(
                    tmp=nginx_dir,
                    port=port,
                    authgate=authgate.url,
                    user=OTHER_USER.pw_name,
                    group=OTHER_GROUP,
                )
            )
            command = [NGINX, "-c", str(conf), "-p", str(nginx_dir), "-e", str(nginx_dir / "e")]
            check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, check.stderr
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 15
                while True:
                    try:
                        httpx.get(url, timeout=5)
                        break
                    except httpx.TransportError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            log = nginx_dir / "error.log"
                            raise RuntimeError(f"nginx did not start: {log.read_text()}") from None
                        time.sleep(0.05)
                yield Served(authgate, url, _children(proc.pid))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    finally:
        shutil.rmtree(nginx_dir, ignore_errors=True)


def test_nginx_worker_runs_as_another_user(behind_nginx: Served) -> None:
    """The premise of the attack tests below: the proxy is not the server's user."""
    assert behind_nginx.nginx_workers
    for worker in behind_nginx.nginx_workers:
        assert _uid_of(worker) == OTHER_USER.pw_uid != os.geteuid()


def test_a_request_through_a_same_host_proxy_is_not_local(behind_nginx: Served) -> None:
    for path in ("/anything", "/admin/users", "/"):
        response = httpx.get(behind_nginx.nginx + path, timeout=30)
        assert response.status_code == 401, (path, response.text)
        assert "x-upstream" not in response.headers


def test_the_same_request_straight_from_the_servers_user_passes(behind_nginx: Served) -> None:
    """ "Locally it just works": the test process is the server's user (root here)."""
    response = httpx.get(behind_nginx.authgate.url + "/anything", timeout=30)
    assert response.status_code == 200, response.text
    # ... and it reached the upstream, which echoes the path it was asked for.
    assert response.headers["x-upstream"] == "yes"
    assert response.json()["raw_path"] == "/anything"


def test_serve_says_the_bypass_is_on_and_whom_it_admits(behind_nginx: Served) -> None:
    _out, err = behind_nginx.authgate.output()
    uid = os.geteuid()
    name = pwd.getpwuid(uid).pw_name
    expected = f"loopback peers owned by uid {uid} ({name})"
    if uid != 0:
        expected += " or uid 0 (root)"
    assert "localhost bypass: on: requests without a credential from" in err, err
    assert expected + " pass as local admin" in err, err
    assert "Rules: none configured, so every request needs a credential" in err, err
    assert "Gateway: requests outside /authgate/ go to http://127.0.0.1:" in err, err


# -- another user's socket, straight to the server -----------------------------------------


@contextmanager
def served(tmp_path: Path, host: str, echo: Echo) -> Iterator[tuple[str, int]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    runtime = Runtime(load_settings(data_dir=data_dir, host=host, access_log=False))
    runtime.start()
    try:
        assert runtime.settings.localhost_bypass == "auto"
        app = build_root_app(runtime, downstream=echo.app, rules=RULES)
        port = free_port(host)
        with live_server(app, host=host, port=port):
            yield host, port
    finally:
        runtime.close()


@as_root
@pytest.mark.parametrize(
    ("host", "family", "source"),
    [
        ("127.0.0.1", "4", ""),
        ("127.0.0.1", "4", "127.0.0.2"),  # any 127.x.y.z peer, not only .1
        ("127.0.0.1", "mapped", ""),  # an IPv6 socket to an IPv4 server
        ("::1", "6", ""),
    ],
)
def test_another_users_socket_is_refused_and_ours_passes(
    tmp_path: Path, host: str, family: str, source: str
) -> None:
    echo = Echo()
    with served(tmp_path, host, echo) as (served_host, port):
        ours = status_from(served_host, port, "/admin/x", family=family, source=source, other=False)
        theirs = status_from(
            served_host, port, "/admin/x", family=family, source=source, other=True
        )
        assert (ours, theirs) == (200, 401)
    # Only our own request reached the app.
    assert echo.reached == ["/admin/x"]


# -- the socket table reader -----------------------------------------------------------------

# Rows copied from this machine's /proc/net/tcp{,6} (x86-64, little-endian).
ROW_V4_CLIENT = (
    "  39: 0200007F:D4C3 0100007F:9ED9 01 00000000:00000000 00:00000000 00000000     0  "
    "      0 39069 2 00000000d4a92808 20 0 0 10 -1                     "
)
ROW_V4_NOBODY = (
    "  77: 0100007F:D9DE 0100007F:8639 01 00000000:00000000 00:00000000 00000000 65534  "
    "      0 40043 2 00000000c5b358a1 20 0 0 10 -1                     "
)
ROW_V4_LISTEN = (
    "  10: 0100007F:9ED9 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0  "
    "      0 39068 3 000000002faa9b97 100 0 0 10 0                     "
)
# The server's end, still in the accept queue: no file yet, so inode 0 and uid 0.
ROW_V4_UNACCEPTED = (
    "  18: 0100007F:9ED9 0200007F:D4C3 01 00000000:00000000 00:00000000 00000000     0  "
    "      0 0 1 00000000ced16a65 20 0 0 10 -1                         "
)
ROW_V6 = (
    "   4: 00000000000000000000000001000000:C512 00000000000000000000000001000000:AC5D 01 "
    "00000000:00000000 00:00000000 00000000     0        0 39071 2 000000007780cf65 20 0 0 10 -1"
)
ROW_V4_MAPPED = (
    "   3: 0000000000000000FFFF00000100007F:CF2A 0000000000000000FFFF00000100007F:9ED9 01 "
    "00000000:00000000 00:00000000 00000000     0        0 39072 2 00000000bdaa2bfe 20 0 0 10 -1"
)
V4_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode"
)


@pytest.mark.skipif(sys.byteorder != "little", reason="the rows were printed by a little-endian")
@pytest.mark.parametrize(
    ("line", "row", "owned"),
    [
        (
            ROW_V4_CLIENT,
            SocketRow(
                (IPv4Address("127.0.0.2"), 54467), (IPv4Address("127.0.0.1"), 40665), 1, 0, 39069
            ),
            True,
        ),
        (
            ROW_V4_NOBODY,
            SocketRow(
                (IPv4Address("127.0.0.1"), 55774),
                (IPv4Address("127.0.0.1"), 34361),
                1,
                65534,
                40043,
            ),
            True,
        ),
        (
            ROW_V4_LISTEN,
            SocketRow((IPv4Address("127.0.0.1"), 40665), (IPv4Address("0.0.0.0"), 0), 10, 0, 39068),
            False,
        ),
        (
            ROW_V4_UNACCEPTED,
            SocketRow(
                (IPv4Address("127.0.0.1"), 40665), (IPv4Address("127.0.0.2"), 54467), 1, 0, 0
            ),
            False,
        ),
        (
            ROW_V6,
            SocketRow((IPv6Address("::1"), 50450), (IPv6Address("::1"), 44125), 1, 0, 39071),
            True,
        ),
        # v4-mapped reads as the IPv4 address the server sees as its peer.
        (
            ROW_V4_MAPPED,
            SocketRow(
                (IPv4Address("127.0.0.1"), 53034), (IPv4Address("127.0.0.1"), 40665), 1, 0, 39072
            ),
            True,
        ),
    ],
)
def test_rows_of_the_kernels_table_parse(line: str, row: SocketRow, owned: bool) -> None:
    assert parse_row(line) == row
    assert row.owned is owned


@pytest.mark.parametrize(
    "line", [V4_HEADER, "", "  3: 0100007F", "  3: XYZ:0050 0100007F:0050 01 0 0 0 0 0 0"]
)
def test_what_is_not_a_row_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_row(line)


def test_a_table_file_of_real_rows_gives_the_owner(tmp_path: Path) -> None:
    """The /proc reader over a table of the rows above: the owner of the peer's socket,
    not of the rows that only share its port (the listener, the unaccepted end)."""
    table = tmp_path / "tcp"
    rows = [V4_HEADER, ROW_V4_LISTEN, ROW_V4_UNACCEPTED, ROW_V4_CLIENT, ROW_V4_NOBODY]
    table.write_text("\n".join(rows) + "\n")
    reader = SocketOwners([table], netlink=False)
    if sys.byteorder != "little":
        pytest.skip("the rows were printed by a little-endian machine")
    server = endpoint("127.0.0.1", 40665)
    client = endpoint("127.0.0.2", 54467)
    nobody = endpoint("127.0.0.1", 55774)
    assert client is not None and nobody is not None and server is not None
    assert reader.owners(client, server) == {0}
    assert reader.owners(client, None) == {0}
    assert reader.owners(nobody, None) == {65534}
    assert reader.owners(client, endpoint("127.0.0.1", 1)) == frozenset()
    # The listener's own address is not a peer anyone connected from.
    assert reader.owners(server, None) == frozenset()


@dataclass
class Connection:
    facts: RequestFacts
    client: socket.socket | subprocess.Popen[str]


def _facts_for(peer: str, port: int, server: tuple[str, int] | None) -> RequestFacts:
    return RequestFacts(method="GET", path="/", peer=peer, peer_port=port, server=server)


HOLD = r"""
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
"""


@as_root
@pytest.mark.parametrize("reader", ["netlink", "proc"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_reader_tells_our_socket_from_another_users(host: str, reader: str) -> None:
    sockets = SocketOwners(netlink=reader == "netlink")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as listener:
        server = listener.getsockname()[:2]
        with socket.create_connection(server, timeout=10) as ours:
            facts = _facts_for(host, ours.getsockname()[1], server)
            assert is_local_request(facts, sockets)
            assert not is_local_request(
                _facts_for(host, ours.getsockname()[1] ^ 1, server), sockets
            )
        theirs = subprocess.Popen(
            [SYSTEM_PYTHON, "-c", HOLD, host, str(server[1])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            user=OTHER_USER.pw_uid,
            group=OTHER_USER.pw_gid,
            extra_groups=[],
            cwd="/",
        )
        try:
            assert theirs.stdout is not None
            port = int(theirs.stdout.readline())
            assert not is_local_request(_facts_for(host, port, server), sockets)
            assert not is_local_request(_facts_for(host, port, None), sockets)
        finally:
            theirs.communicate(input="", timeout=20)


def test_an_unreadable_table_admits_nobody(tmp_path: Path) -> None:
    missing = SocketOwners([tmp_path / "no-such-table"], netlink=False)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = listener.getsockname()
        with socket.create_connection(server, timeout=10) as ours:
            facts = _facts_for("127.0.0.1", ours.getsockname()[1], server)
            assert is_local_request(facts)  # the real table: ours
            assert not is_local_request(facts, missing)
            # Without the server's address the reader has only the tables to go on.
            assert not is_local_request(
                _facts_for("127.0.0.1", facts.peer_port or 0, None), missing
            )


def test_a_peer_without_a_port_is_not_local() -> None:
    """A server that does not say the peer's port (wsgiref): nothing to look up."""
    assert not is_local_request(RequestFacts(method="GET", path="/", peer="127.0.0.1"))


def test_the_middleware_logs_the_bypass_state_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echo = Echo()
    caplog.set_level("INFO", logger="authgate.middleware")
    with served(tmp_path, "127.0.0.1", echo):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "authgate.middleware"]
    assert lines == [describe_bypass(True)]
    assert "loopback peers owned by uid" in lines[0]
    assert describe_bypass(False).startswith("localhost bypass: off")


def test_serve_says_when_the_bypass_is_off_and_how_many_rules_it_loaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    config = tmp_path / "authgate.toml"
    config.write_text(
        '[[rules]]\nmethod = "GET"\npath = "/public/**"\npublic = true\n\n'
        '[[rules]]\nmethod = "*"\npath = "/**"\nscopes = ["read"]\n'
    )
    args = ["--host", "127.0.0.1", "--data-dir", str(data_dir), "--config", str(config)]
    args += ["--localhost-bypass", "off"]
    with serve_process(tmp_path, free_port(), *args, env=clean_env()) as served:
        assert httpx.get(served.url + "/private", timeout=30).status_code == 401
        _out, err = served.output()
    assert "localhost bypass: off (every request needs a credential)" in err, err
    assert "Rules: 2 loaded" in err, err
    assert "Upstream: none (no --upstream)" in err, err


# -- WSGI: the server gives the peer's port, not the address it connected to ---------------


def _wsgi_app(environ: dict[str, object], start_response: StartResponse) -> list[bytes]:
    principal = principal_of(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [(principal.kind if principal is not None else "anonymous").encode()]


@contextmanager
def wsgi_served(tmp_path: Path, make: Callable[..., HTTPServer]) -> Iterator[int]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    settings = load_settings(data_dir=data_dir, access_log=False)
    app = AuthgateWSGIMiddleware(_wsgi_app, settings=settings, listen_host="127.0.0.1")
    server = make(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@as_root
def test_wsgi_werkzeug_our_socket_passes_another_users_is_refused(tmp_path: Path) -> None:
    """Werkzeug passes REMOTE_PORT: the owner is read from the /proc tables."""
    from werkzeug.serving import make_server as werkzeug_server

    with wsgi_served(tmp_path, lambda app: werkzeug_server("127.0.0.1", 0, app)) as port:
        assert status_from("127.0.0.1", port, "/x", other=False) == 200
        assert httpx.get(f"http://127.0.0.1:{port}/x", timeout=30).text == "local"
        assert status_from("127.0.0.1", port, "/x", other=True) == 401


def test_wsgi_without_the_peers_port_admits_nobody(tmp_path: Path) -> None:
    """wsgiref gives no REMOTE_PORT: the peer's socket cannot be found, so not local."""

    def make(app: Any) -> HTTPServer:
        return make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)

    with wsgi_served(tmp_path, make) as port:
        assert httpx.get(f"http://127.0.0.1:{port}/x", timeout=30).status_code == 401


def test_off_linux_nobody_is_local_and_the_log_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another platform cannot be run here: only its name is changed, on a real socket."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = listener.getsockname()
        with socket.create_connection(server, timeout=10) as ours:
            facts = _facts_for("127.0.0.1", ours.getsockname()[1], server)
            assert is_local_request(facts)
            monkeypatch.setattr(sys, "platform", "darwin")
            assert not is_local_request(facts)
            assert not is_local_request(facts, SocketOwners())
    assert describe_bypass(True).startswith("localhost bypass: on, but admits nobody")
