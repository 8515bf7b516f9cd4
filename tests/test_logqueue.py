"""authgate's logs are written by a thread of their own: a blocked log destination never
stalls a request, nothing is lost at shutdown, and ``authgate serve`` (one process or
``--workers 2``) writes its access log that way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authgate.adapters.scope import Receive, Scope, Send
from authgate.logqueue import QUEUE_SIZE, QueuedLogging, queued_logging
from tests.foundation.helpers import clean_env, serve_process
from tests.support import free_port, live_server, wait_until

log = logging.getLogger("authgate.test")


class Blocking(logging.Handler):
    """A destination that blocks until released, as a full pipe or a stuck terminal does."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.opened.wait(30)
        self.lines.append(record.getMessage())


@pytest.fixture
def blocking_root() -> Iterator[Blocking]:
    handler = Blocking()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [handler]
    try:
        yield handler
    finally:
        handler.opened.set()
        root.handlers = saved


async def logging_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    log.warning("request %s", scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_blocked_destination_does_not_stall_requests(blocking_root: Blocking) -> None:
    with live_server(QueuedLogging(logging_app)) as url:
        # The handler blocks every write; the requests are answered all the same.
        for index in range(20):
            assert httpx.get(f"{url}/r{index}", timeout=5).status_code == 200
        assert blocking_root.lines == []
        blocking_root.opened.set()
    # Shut down: the queue was drained to the destination, in order.
    assert blocking_root.lines == [f"request /r{index}" for index in range(20)]


def test_a_full_queue_drops_and_says_how_many(blocking_root: Blocking) -> None:
    installed = queued_logging()
    try:
        for index in range(QUEUE_SIZE + 50):
            log.warning("line %d", index)
        blocking_root.opened.set()
        # Once the listener has made room, the count goes out before the next record.
        assert wait_until(lambda: len(blocking_root.lines) > 100, timeout=10)
        log.warning("after")
    finally:
        installed.stop()
    dropped = [line for line in blocking_root.lines if "log records dropped" in line]
    assert len(dropped) == 1
    count = int(dropped[0].split()[0])
    # The listener took one record off before blocking: at most one more fits.
    assert 49 <= count <= 50
    assert blocking_root.lines[-1] == "after"
    assert logging.getLogger("authgate").propagate is True


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_writes_its_access_log_through_the_queue(tmp_path: Path, workers: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    args = ["--data-dir", str(data_dir), "--localhost-bypass", "off", "--workers", workers]
    with serve_process(tmp_path / "run", free_port(), *args, env=clean_env()) as served:
        for _ in range(5):
            httpx.get(f"{served.url}/authgate/v1/verify", timeout=10)
    _out, err = served.output()
    lines = [line for line in err.splitlines() if line.startswith("INFO:authgate.access:")]
    verify_lines = [line for line in lines if '"GET /authgate/v1/verify" 403' in line]
    assert len(verify_lines) == 5, err
