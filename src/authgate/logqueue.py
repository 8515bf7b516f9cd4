"""authgate's logs leave the event loop: a ``QueueHandler`` on the ``authgate`` logger, a
``QueueListener`` thread writing to the handlers the root logger had.

A handler that writes to a terminal, a pipe or a file can block (a slow terminal, a full
pipe to a log collector); on the event loop, that stalls every request of the process.
With ``QueuedLogging`` around the app, a record is put on a bounded queue and the
listener thread does the writing. ``authgate serve`` wraps its app in it, in every worker
process (each has its own queue and thread, so workers never share one).

Failure policy: when the queue is full (the destination is slower than the traffic), new
records are dropped and counted rather than waited for, and the count is logged once
there is room again. At shutdown the queue is drained, within ``FLUSH_SECONDS``.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading
from typing import Any

from authgate.adapters.scope import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FLUSH_SECONDS", "QUEUE_SIZE", "QueuedLogging", "queued_logging"]

QUEUE_SIZE = 10_000
FLUSH_SECONDS = 5.0
_LOGGER = "authgate"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never waits: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue[Any]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                note = logging.LogRecord(
                    "authgate.log", logging.WARNING, __file__, 0,
                    "%d log records dropped: the log's destination is slower than the traffic",
                    (self.dropped,), None,
                )  # fmt: skip
                self.queue.put_nowait(self.prepare(note))
                self.dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Installed:
    def __init__(self, listener: logging.handlers.QueueListener, handler: logging.Handler) -> None:
        self.listener = listener
        self.handler = handler
        self.propagate = logging.getLogger(_LOGGER).propagate

    def stop(self) -> None:
        logger = logging.getLogger(_LOGGER)
        logger.removeHandler(self.handler)
        logger.propagate = self.propagate
        # QueueListener.stop waits for the thread without a deadline: bound it here.
        stopper = threading.Thread(target=self.listener.stop, daemon=True)
        stopper.start()
        stopper.join(FLUSH_SECONDS)


def queued_logging() -> _Installed:
    """Send the ``authgate`` loggers through a queue to the root logger's handlers (the
    last-resort stderr handler if it has none). ``.stop()`` drains and undoes it."""
    records: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
    targets: list[logging.Handler] = list(logging.getLogger().handlers)
    if not targets and logging.lastResort is not None:
        targets.append(logging.lastResort)
    listener = logging.handlers.QueueListener(records, *targets, respect_handler_level=True)
    handler = _DroppingQueueHandler(records)
    installed = _Installed(listener, handler)
    logger = logging.getLogger(_LOGGER)
    logger.addHandler(handler)
    # The root's handlers are the listener's now: propagating would write twice.
    logger.propagate = False
    listener.start()
    return installed


class QueuedLogging:
    """ASGI wrapper: the queue from ``lifespan.startup`` to the end of the shutdown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        installed: _Installed | None = None

        async def receive_wrapper() -> Message:
            nonlocal installed
            message = await receive()
            if message["type"] == "lifespan.startup" and installed is None:
                installed = queued_logging()
            return message

        try:
            await self.app(scope, receive_wrapper, send)
        finally:
            if installed is not None:
                installed.stop()
