"""Helpers for tests: free ports, live uvicorn servers, waiting for conditions."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from authgate.store.deadline import StoreLimits
from authgate.store.sql import SqlStore

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
# Room for a loaded test machine (the same as make_settings' store_timeout): a test of
# what the store does must not fail on how fast a shared CI box answers. The fault tests
# hold the product's default deadline.
ROOMY_STORE = StoreLimits(timeout=5.0, statement_timeout=5.0)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(
    app: Any, host: str = "127.0.0.1", port: int | None = None, **config: Any
) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server in a thread; yields its base URL."""
    port = port or free_port(host)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    bracketed = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{bracketed}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def cli_commands() -> dict[tuple[str, ...], Any]:
    """Every command of the ``authgate`` CLI by its path (``()`` is the root), each the
    Click command Typer built, so a test can read its parameters."""
    from typer.main import get_command

    from authgate.cli import app

    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found[path] = command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return found


def sql_store(store: object) -> SqlStore:
    """The SQL implementation behind a ``Store``, for a test that reads its tables or its
    limits directly, past the store's interface."""
    assert isinstance(store, SqlStore), store
    return store
