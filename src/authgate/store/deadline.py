"""A deadline on every store call, a breaker over them, and a bounded pool to run them in.

A stopped database server keeps its TCP connections open and answers nothing, so no
driver timeout fires (``statement_timeout`` is enforced by the server, TCP keepalives are
answered by the kernel). The only deadline that holds is the caller's own: each call runs
on one of a few threads of the store's own, and the caller waits for it at most
``timeout`` seconds. A call past its deadline has its connection interrupted, so that
its thread comes back and its transaction is rolled back rather than committed later; a
call still queued is cancelled. Since the pool is the store's own, a hung store holds
those few threads, never the ASGI server's worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from authgate.breaker import CircuitBreaker
from authgate.errors import NotReady

__all__ = ["StoreCall", "StoreLimits", "StoreGuard", "current_call"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """How long each part of a store call may take (see ``Settings.store_*``)."""

    timeout: float = 1.0  # one call, everything included: the caller's deadline
    connect_timeout: int = 2  # libpq's minimum
    statement_timeout: float = 1.0  # PostgreSQL's statement_timeout; SQLite's busy timeout
    pool_timeout: float = 1.0
    threads: int = 8
    breaker_failures: int = 3
    breaker_reset_seconds: float = 1.0


class StoreCall:
    """One call under way: the store notes the connection it uses, so that a call past
    its deadline can be interrupted, and a call abandoned while it was still connecting
    stops before it sends anything."""

    __slots__ = ("_lock", "abandoned", "connection", "finished")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connection: Any = None
        self.abandoned = False
        self.finished = False

    def abandon(self, interrupt: Callable[[Any], None]) -> None:
        with self._lock:
            self.abandoned = True
            if self.connection is not None and not self.finished:
                interrupt(self.connection)

    def using(self, connection: Any) -> None:
        with self._lock:
            if self.abandoned:
                # Its caller was answered 503 already: nothing may be written for it now.
                raise NotReady("the store call was abandoned at its deadline")
            self.connection = connection

    def released(self) -> None:
        with self._lock:
            self.connection = None


_local = threading.local()


def current_call() -> StoreCall | None:
    """The guarded call this thread is running, if any."""
    call: StoreCall | None = getattr(_local, "call", None)
    return call


class StoreGuard:
    def __init__(
        self,
        limits: StoreLimits,
        *,
        describe: str,
        interrupt: Callable[[Any], None],
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.limits = limits
        self.breaker = breaker or CircuitBreaker(
            failures=limits.breaker_failures, reset_seconds=limits.breaker_reset_seconds
        )
        self._describe = describe
        self._interrupt = interrupt
        self._pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="authgate-store")

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on a store thread, within the deadline; NotReady
        when the store does not answer in time, is unreachable, or keeps failing."""
        if current_call() is not None:
            return function(*args, **kwargs)  # already on a store thread, under a deadline
        if not self.breaker.allow():
            raise NotReady(
                f"the store at {self._describe} is not answering; requests that need it "
                f"fail at once for now (next try in {self.breaker.retry_in:.1f} s)"
            )
        call = StoreCall()
        future = self._pool.submit(_run, call, function, args, kwargs)
        try:
            result = future.result(timeout=self.limits.timeout)
        except FutureTimeout:
            if not future.cancel():
                call.abandon(self._interrupt)
            self.breaker.failed()
            raise NotReady(
                f"the store at {self._describe} did not answer within {self.limits.timeout:g} s"
            ) from None
        except NotReady:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.succeeded()  # it answered: a refusal, not an outage
            raise
        self.breaker.succeeded()
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _run(call: StoreCall, function: Callable[..., T], args: Any, kwargs: Any) -> T:
    _local.call = call
    try:
        return function(*args, **kwargs)
    finally:
        call.finished = True
        _local.call = None
