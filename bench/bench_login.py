"""Login time for an existing and a missing email: the two must cost the same.

Run: .venv/bin/python bench/bench_login.py [--tries 200] [--database-url URL] [--service]

By default every try goes through the real route, ``POST /authgate/v1/tokens`` on a live
uvicorn server in this process, with httpx on one kept-alive connection: an existing email
with a wrong password, and an email with no user. (A right password is not compared: its
extra work, making a token, happens only once the caller has proved who they are.)
``--service`` calls ``UserService.authenticate`` directly instead, without HTTP. The login
limit is raised for the run so it never blocks.

Prints the medians of both kinds of try, and their ratio, which should stay within 5 %:
in wall-clock time (what a client sees), and in CPU time of this process (server and
client together), which other processes' load on the machine does not blur. A
measurement, not a test.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from authgate.errors import InvalidCredentials
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.settings import load_settings

PASSWORD = "correct horse battery staple"
EXISTING = "alice@example.com"
MISSING = "nobody@example.com"


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def measure(tries: int, attempt: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    """Wall-clock and CPU time of each try. The tries go in ABBA blocks (existing, missing,
    missing, existing), so drift over the run falls on both alike."""
    for email in (EXISTING, MISSING) * 10:  # warm-up: connections, threads, the dummy hash
        attempt(email)
    wall: dict[str, list[float]] = {EXISTING: [], MISSING: []}
    cpu: dict[str, list[float]] = {EXISTING: [], MISSING: []}
    for index in range(tries):
        for email in (EXISTING, MISSING) if index % 2 == 0 else (MISSING, EXISTING):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            attempt(email)
            cpu[email].append(time.process_time() - start_cpu)
            wall[email].append(time.perf_counter() - start_wall)
    return {"wall clock": wall, "CPU time": cpu}


def via_route(runtime: Runtime, tries: int) -> dict[str, dict[str, list[float]]]:
    with (
        live_server(create_app(runtime, manage_runtime=False)) as url,
        httpx.Client(base_url=f"{url}/authgate/v1", timeout=30) as client,
    ):

        def attempt(email: str) -> None:
            body = {"email": email, "password": "not the password", "name": "bench"}
            response = client.post("/tokens", json=body)
            assert response.status_code == 401, response.text

        return measure(tries, attempt)


def via_service(runtime: Runtime, tries: int) -> dict[str, dict[str, list[float]]]:
    def attempt(email: str) -> None:
        try:
            runtime.users.authenticate(email, "not the password", source="bench")
        except InvalidCredentials:
            return
        raise AssertionError("a wrong password was accepted")

    return measure(tries, attempt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--service", action="store_true", help="Call the service, not HTTP.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            database_url=args.database_url,
            login_rate_limit="1000000/minute",
        )
        runtime = Runtime(settings)
        runtime.start()
        try:
            runtime.users.create(Actor("bench"), email=EXISTING, password=PASSWORD, role="member")
            how = "UserService.authenticate" if args.service else "POST /authgate/v1/tokens"
            results = (via_service if args.service else via_route)(runtime, args.tries)
        finally:
            runtime.close()
    print(f"login with a wrong password, through {how}; {args.tries} tries each")
    for clock, times in results.items():
        existing = statistics.median(times[EXISTING]) * 1000
        missing = statistics.median(times[MISSING]) * 1000
        ratio = missing / existing
        verdict = "within" if abs(ratio - 1) <= 0.05 else "OUTSIDE"
        print(
            f"{clock:>10}: existing email {existing:7.2f} ms, missing email {missing:7.2f} ms "
            f"(medians); missing/existing {ratio:.3f}, {verdict} 5 %"
        )


if __name__ == "__main__":
    main()
