"""``authgate serve``'s processes: one, or ``--workers N`` sharing one port.

With several workers, uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``)
binds the socket once, starts the processes, and replaces one that dies. ``uvicorn.run``
insists on an import string for that, which could not carry the settings that flags
gave; a picklable factory can, so each worker builds its own runtime and gateway from
the parent's settings. The parent prepares the store and the admin key before any worker
starts, so workers never race to create them.

Between workers, revocations travel by Redis when it is configured, else by the
same-host channel (``authgate.samehost``); rate limits are shared only through Redis
(per worker without it, as documented). Metrics are summed over the workers through
prometheus-client's multiprocess mode (``authgate.metrics``): a private folder made for
this run, which the parent removes when it stops.
"""

from __future__ import annotations

import errno
import functools
import gc
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from authgate.errors import ConfigurationError
from authgate.settings import Settings

if TYPE_CHECKING:
    from authgate.adapters.scope import ASGIApp

__all__ = ["LOG_FORMAT", "refuse_taken_port", "serve_workers", "tune_collector", "worker_app"]

LOG_FORMAT = "%(levelname)s:%(name)s: %(message)s"
WORKER_HEALTHCHECK_SECONDS = 30


def refuse_taken_port(host: str, port: int) -> None:
    """Say which port is taken, and how to choose another, before anything starts.

    uvicorn finds out only after the store is migrated and start-up has been announced,
    then exits with a bare ``[Errno 98]``. A probe bound the way uvicorn binds
    (``SO_REUSEADDR``) fails exactly when uvicorn's bind would.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is already in use by another program; "
                    "choose another with --port N (or AUTHGATE_PORT, or port = N in the "
                    "config file)"
                ) from None
            if exc.errno == errno.EACCES:
                raise ConfigurationError(
                    f"port {port} needs privileges this user does not have; "
                    "choose one above 1023 with --port N"
                ) from None
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def tune_collector() -> None:
    """Requests leave no reference cycles behind, yet at the default threshold the cyclic
    collector runs many times a second under load, a cost on every proxied request.
    What exists once the app is built lives as long as the process: frozen, full
    collections no longer walk it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def worker_app(settings: Settings) -> ASGIApp:
    """One worker's app; its runtime starts and stops with the app's lifespan."""
    # Imported here, not at the top: a new worker unpickles this module before it can
    # answer the supervisor's first health check, so it must import quickly.
    from authgate.logqueue import QueuedLogging
    from authgate.proxy.gateway import gateway_from_settings
    from authgate.runtime import Runtime
    from authgate.server.compose import build_root_app
    from authgate.server.protocol import use_worker_limits

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    use_worker_limits(settings)
    gateway = gateway_from_settings(settings) if settings.upstream_url else None
    app = QueuedLogging(build_root_app(Runtime(settings), downstream=gateway, manage_runtime=True))
    tune_collector()
    return app


@contextmanager
def _metrics_folder() -> Iterator[str]:
    """A new private folder (0700, empty) for the workers' metric files, named to them by
    the environment they inherit, and removed afterwards. Made per run rather than kept in
    the data folder: a count from an earlier run, or from another server on the same
    data folder, would be summed in."""
    from authgate.metrics import MULTIPROCESS_ENV

    folder = tempfile.mkdtemp(prefix="authgate-metrics-")
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def serve_workers(settings: Settings, options: dict[str, Any]) -> None:
    """Serve with ``settings.workers`` processes until told to stop (SIGINT, SIGTERM)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, telling prometheus-client of each worker that ends."""

        def keep_subprocess_alive(self) -> None:
            before = [process.pid for process in self.processes]
            super().keep_subprocess_alive()
            after = {process.pid for process in self.processes}
            for pid in before:
                if pid is not None and pid not in after:
                    _worker_ended(folder, pid)

        def join_all(self) -> None:
            super().join_all()
            for process in self.processes:
                if process.pid is not None:
                    _worker_ended(folder, process.pid)

    config = uvicorn.Config(
        functools.partial(worker_app, settings),
        factory=True,
        # Header size, header-read time and connections per address (per worker).
        http="authgate.server.protocol:WorkerHttpProtocol",
        workers=settings.workers,
        lifespan="on",
        # A worker answers health checks only once its app is built; on a loaded machine
        # that takes longer than uvicorn's default allows, and it would be killed in a loop.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **options,
    )
    socket = config.bind_socket()
    try:
        with _metrics_folder() as folder:
            Supervisor(config, sockets=[socket]).run()
    finally:
        socket.close()


def _worker_ended(folder: str, pid: int) -> None:
    # Its counts stay (they happened); only live gauges would drop it, and prometheus-client
    # keeps that bookkeeping.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
