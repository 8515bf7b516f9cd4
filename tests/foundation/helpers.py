"""Helpers of the foundation suite: a settable clock, store spies, raw HTTP and processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from authgate.facts import RequestFacts
from tests.support import free_port

# The console script installed next to the interpreter running the tests.
AUTHGATE = str(Path(sys.executable).parent / "authgate")


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CallCounter:
    """Wraps a method of our own store and counts how often the core calls it."""

    def __init__(self, target: Callable[..., Any]) -> None:
        self._target = target
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._target(*args, **kwargs)


def facts(*headers: tuple[str, str], path: str = "/") -> RequestFacts:
    return RequestFacts(method="GET", path=path, headers=tuple(headers), peer="203.0.113.9")


def api_key(token: str) -> RequestFacts:
    return facts(("x-api-key", token))


@dataclass
class RawResponse:
    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def raw_request(base_url: str, request: bytes, timeout: float = 10.0) -> RawResponse:
    """Send these exact bytes to the server and read its answer until it closes."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return RawResponse(status, headers, body)


def get_request(path: str, *header_lines: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: localhost", b"Connection: close"]
    return b"\r\n".join([*lines, *header_lines]) + b"\r\n\r\n"


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTHGATE_")}
    env.update(extra)
    return env


def run_authgate(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``authgate`` command in a process of its own."""
    return subprocess.run(
        [AUTHGATE, *args],
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path

    def output(self) -> tuple[str, str]:
        return (
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def serve_process(
    workdir: Path,
    port: int,
    *args: str,
    env: Mapping[str, str] | None = None,
    startup_seconds: float = 60,
    host: str = "127.0.0.1",
) -> Iterator[ServeProcess]:
    """``authgate serve`` as a real process; yields once /health answers 200 (a loaded
    machine can take many seconds to import and migrate: ``startup_seconds`` bounds it).
    ``host``: the address it is reached at (``::1`` when it listens there alone)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = workdir / "serve.out", workdir / "serve.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [AUTHGATE, "serve", "--port", str(port), *args],
            env=dict(env) if env is not None else clean_env(),
            stdout=out,
            stderr=err,
        )
    bracketed = f"[{host}]" if ":" in host else host
    served = ServeProcess(process, f"http://{bracketed}:{port}", stdout_path, stderr_path)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise AssertionError(f"authgate serve exited early: {served.output()}")
            try:
                if httpx.get(f"{served.url}/authgate/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"authgate serve did not become healthy: {served.output()}")
            time.sleep(0.05)
        yield served
    finally:
        _stop(process)


@contextmanager
def self_signed_server(
    tmp_path: Path, email: str, password: str
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """``authgate serve --tls on`` on its self-signed certificate, with ``email`` as a user:
    its URL, the certificate it made, and an environment for CLI processes (their own
    config folder, no AUTHGATE_* settings)."""
    import ssl

    data = tmp_path / "data"
    no_tools = tmp_path / "bin"  # no mkcert, no tailscale on the PATH: the self-signed rung
    no_tools.mkdir()
    env = clean_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    added = subprocess.run(
        [AUTHGATE, "--data-dir", str(data), "users", "add", email, "--password-stdin"],
        env=env, input=password + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = free_port()
    log = tmp_path / "serve.err"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [AUTHGATE, "serve", "--host", "127.0.0.1", "--port", str(port), "--tls", "on",
             "--data-dir", str(data)],
            env=clean_env(PATH=str(no_tools)), stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    cert = data / "tls" / "self-signed-cert.pem"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {log.read_text()}")
            try:
                trust = ssl.create_default_context(cafile=str(cert))
                if httpx.get(f"{url}/authgate/v1/health", verify=trust).status_code == 200:
                    break
            except (OSError, httpx.TransportError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer: {log.read_text()}")
            time.sleep(0.1)
        yield url, cert, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
