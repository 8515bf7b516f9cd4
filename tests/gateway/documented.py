"""The proxy configurations docs/gateway.md prints, read from the page itself, with only
the addresses changed, and run: nginx and Caddy (Debian's packages)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.gateway.authgate_server import LiveAuthgate

GATEWAY_DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"

# Where the page's configurations send requests.
DOC_UPSTREAM = "http://127.0.0.1:9000"
DOC_AUTHGATE = "http://127.0.0.1:8080"
DOC_NGINX_LISTEN = "listen 8000;"


@dataclass
class Stack:
    """A documented proxy (``url``) in front of an echo upstream, asking ``authgate``."""

    url: str
    authgate: LiveAuthgate


def upstream_saw(response: httpx.Response) -> dict[str, str]:
    """The headers the echo upstream (``tests.gateway.upstream``) received."""
    return {name: value for name, value in response.json()["headers"]}


def documented_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", GATEWAY_DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, f"docs/gateway.md must show one {language} block"
    return str(blocks[0])


def nginx_main_conf(tmp: Path, included: str) -> str:
    """A minimal nginx.conf around a conf.d file, as Debian's includes it in ``http``."""
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\nmaster_process off;\npid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 128; }}\n"
        f"http {{\n    access_log off;\n{temp_paths}{included}}}\n"
    )


def nginx_check(tmp: Path, included: str) -> subprocess.CompletedProcess[str]:
    conf = tmp / "nginx-check.conf"
    conf.write_text(nginx_main_conf(tmp, included))
    return subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text() if log.exists() else "no log") from None
            time.sleep(0.05)


@contextmanager
def documented_nginx(tmp: Path, port: int, upstream: str, authgate: str) -> Iterator[str]:
    """nginx running the page's configuration; yields its URL."""
    if not Path(NGINX).is_file():
        # A failure, not a skip: ./scripts/test (the README's test command, and CI's)
        # installs nginx before it runs pytest.
        pytest.fail(f"nginx is not installed ({NGINX}); run ./scripts/test, which installs it")
    server = documented_block("nginx")
    assert DOC_NGINX_LISTEN in server and DOC_UPSTREAM in server and DOC_AUTHGATE in server
    server = (
        server.replace(DOC_NGINX_LISTEN, f"listen 127.0.0.1:{port};")
        .replace(DOC_UPSTREAM, upstream)
        .replace(DOC_AUTHGATE, authgate)
    )
    check = nginx_check(tmp, server)
    assert check.returncode == 0, check.stderr
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_main_conf(tmp, server))
    args = [NGINX, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc, tmp / "error.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def documented_caddy(tmp: Path, port: int, upstream: str, authgate: str) -> Iterator[str]:
    """Caddy running the page's Caddyfile; yields its URL."""
    if not Path(CADDY).is_file():
        pytest.fail(f"caddy is not installed ({CADDY}); run ./scripts/test, which installs it")
    site = (
        documented_block("caddyfile")
        .replace("app.example.com", f"http://127.0.0.1:{port}")
        .replace("authgate:8080", authgate.removeprefix("http://"))
        .replace("app:9000", upstream.removeprefix("http://"))
    )
    conf = tmp / "Caddyfile"
    conf.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site)
    env = {"HOME": str(tmp), "XDG_DATA_HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)}
    args = [CADDY, "run", "--config", str(conf), "--adapter", "caddyfile"]
    log_path = tmp / "caddy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, proc, log_path)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)
