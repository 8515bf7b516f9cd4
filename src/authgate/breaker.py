"""One circuit breaker for a dependency that can hang: the store and Redis.

After ``failures`` failures in a row the circuit opens: callers are refused at once
instead of each waiting out its own deadline on a dependency that keeps timing out. After
``reset_seconds`` one caller (the probe) is let through; its success closes the circuit,
its failure keeps it open for another ``reset_seconds``.

Two ways to use it:

- ``allow`` / ``succeeded`` / ``failed``, for a caller that runs the call itself under its
  own deadline (the store's guard, which must count a missed deadline as a failure);
- ``call(fn)``, for a dependency that is a shortcut, never the only way to decide (Redis:
  shared counts, instant revocation). It answers without waiting: ``CircuitOpen`` when
  the circuit is open or the probe is in flight, ``CircuitBusy`` when ``max_concurrent``
  calls are already in flight (so a dependency that stops answering can hold only that
  many worker threads, even before the circuit opens), and a failure of ``fn`` (one of
  ``errors``) is counted and raised as ``CircuitOpen``; the caller takes its fallback.

Written by hand: the libraries that do this (pybreaker, aiobreaker) wrap the call
themselves and count every exception, where authgate must count only the ones that mean
"unreachable", keep its own deadline, answer without waiting, bound concurrent callers and
report the outage's start and end (``Transition`` records, for readiness and the audit
log, which the runtime writes off the request path).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from authgate.clock import Clock, now_utc
from authgate.errors import NotReady

__all__ = ["CircuitBreaker", "CircuitBusy", "CircuitOpen", "Transition"]

log = logging.getLogger("authgate.breaker")

T = TypeVar("T")


class CircuitOpen(NotReady):
    """The dependency is not asked now: open, a trial already in flight, or too busy
    (``busy``: every slot taken by calls in flight, which says nothing of its health)."""

    busy = False


class CircuitBusy(CircuitOpen):
    busy = True


@dataclass(frozen=True, slots=True)
class Transition:
    """The dependency went down (``down``) or answered again (``up``)."""

    state: Literal["down", "up"]
    at: datetime
    reason: str
    down_seconds: float = 0.0


class CircuitBreaker:
    """Thread-safe. ``clock`` (monotonic seconds) times the circuit and ``now`` stamps the
    transitions; both are injectable for tests."""

    def __init__(
        self,
        name: str | None = None,
        *,
        failures: int,
        reset_seconds: float,
        max_concurrent: int | None = None,
        errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
        now: Clock = now_utc,
        on_open: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("a circuit breaker needs at least one failure to open")
        if reset_seconds <= 0:
            raise ValueError("a circuit breaker's reset time must be positive")
        # A named breaker logs its transitions; the owner of an unnamed one tells them
        # through on_open / on_close.
        self.name = name or "the dependency"
        self._logs = name is not None
        self._threshold = failures
        self._reset = reset_seconds
        self._errors = errors
        self._clock = clock
        self._now = now
        self._slots = (
            threading.BoundedSemaphore(max_concurrent) if max_concurrent is not None else None
        )
        # Called outside the lock, in the thread whose report changed the state.
        self.on_open = on_open or (lambda: None)
        self.on_close = on_close or (lambda: None)
        self._lock = threading.Lock()
        self._failures = 0
        self._open = False
        self._retry_at = 0.0
        self._probing = False
        self._down_since: datetime | None = None
        self._down_started = 0.0
        self.last_error = ""
        self._transitions: deque[Transition] = deque(maxlen=256)

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def down_since(self) -> datetime | None:
        """When the circuit opened, while it is open."""
        return self._down_since

    @property
    def retry_in(self) -> float:
        """Seconds until the next probe may go (0 when closed)."""
        return max(0.0, self._retry_at - self._clock()) if self._open else 0.0

    def allow(self) -> bool:
        """Whether a call may go to the dependency now. When open, the first caller after
        the reset time is the probe and must report back with ``succeeded``/``failed``."""
        if not self._open:
            return True
        with self._lock:
            if not self._open:
                return True
            if self._probing or self._clock() < self._retry_at:
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        if not self._open and self._failures == 0:
            return  # the common case, without the lock
        with self._lock:
            closed = self._open
            self._failures = 0
            self._open = False
            self._probing = False
            if closed:
                down_for = self._clock() - self._down_started
                self._down_since = None
                self._transitions.append(Transition("up", self._now(), "answered", down_for))
        if closed:
            if self._logs:
                log.warning("%s answers again after %.1f s", self.name, down_for)
            self.on_close()

    def failed(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if error is not None:
                self.last_error = str(error) or type(error).__name__
            if self._open:
                self._retry_at = self._clock() + self._reset
                return
            if self._failures < self._threshold:
                return
            self._open = True
            self._down_started = self._clock()
            self._retry_at = self._down_started + self._reset
            self._down_since = self._now()
            self._transitions.append(Transition("down", self._down_since, self.last_error))
        if self._logs:
            log.warning(
                "%s unreachable (%s): not asked again for %.1f s; fallbacks in use",
                self.name,
                self.last_error,
                self._reset,
            )
        self.on_open()

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, or ``CircuitOpen`` without waiting (see the module's docstring)."""
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise CircuitBusy(f"{self.name}: too many calls already waiting")
        try:
            if not self.allow():
                raise CircuitOpen(f"{self.name} is unreachable since {self._down_since}")
            try:
                result = fn()
            except self._errors as exc:
                self.failed(exc)
                raise CircuitOpen(f"{self.name} cannot be reached: {exc}") from exc
            except BaseException:
                self._release_probe()
                raise
            self.succeeded()
            return result
        finally:
            if self._slots is not None:
                self._slots.release()

    def take_transitions(self) -> list[Transition]:
        taken: list[Transition] = []
        while self._transitions:
            taken.append(self._transitions.popleft())
        return taken

    def _release_probe(self) -> None:
        """An error that says nothing of the dependency's health: no count either way,
        but the next caller may probe."""
        if self._open:
            with self._lock:
                self._probing = False
