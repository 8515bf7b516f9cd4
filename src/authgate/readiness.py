"""Readiness: whether this instance should be sent traffic, and if not, what fails since when.

Liveness (``/health``) only says the process serves; readiness (``/ready``) asks each
dependency: migrations done, the store answers, Redis answers (when configured), the data
folder has room to write. Each probe is a plain blocking call that raises when its
dependency fails; the HTTP route runs them with the deadline, so a hung dependency reads
as "no answer within N s" instead of holding the probe. Framework-free, like the core.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from authgate.breaker import CircuitBreaker
from authgate.clock import Clock, now_utc
from authgate.credentials.authenticator import Authenticator
from authgate.errors import NotReady
from authgate.ratelimit import RateLimiter
from authgate.store.protocols import StoreHealth

__all__ = ["Problem", "Readiness"]

Probe = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Problem:
    dependency: str  # "startup", "store", "redis", "disk"
    detail: str
    since: datetime

    def as_dict(self, now: datetime) -> dict[str, object]:
        return {
            "dependency": self.dependency,
            "detail": self.detail,
            "since": self.since.isoformat(),
            "seconds": round(max(0.0, (now - self.since).total_seconds()), 3),
        }


class Readiness:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        store: StoreHealth,
        limiter: RateLimiter,
        redis_breaker: CircuitBreaker | None,
        data_dir: Path,
        min_free_bytes: int,
        clock: Clock = now_utc,
    ) -> None:
        self._authenticator = authenticator
        self._store = store
        self._limiter = limiter
        self._breaker = redis_breaker
        self._data_dir = data_dir
        self._min_free = min_free_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._failing_since: dict[str, datetime] = {}

    def probes(self) -> dict[str, Probe]:
        probes: dict[str, Probe] = {
            "startup": self._started,
            "store": self._store.ping,
            "disk": self._room_to_write,
        }
        if self._breaker is not None:
            probes["redis"] = self._limiter.ping
        return probes

    def observe(self, dependency: str, failure: str | None) -> Problem | None:
        """Remember when ``dependency`` started failing; ``None`` means it answered."""
        with self._lock:
            if failure is None:
                self._failing_since.pop(dependency, None)
                return None
            since = self._failing_since.setdefault(dependency, self._clock())
        if dependency == "redis" and self._breaker is not None:
            opened = self._breaker.down_since
            if opened is not None and opened < since:
                since = opened  # requests saw it fail before any probe did
        return Problem(dependency, failure, since)

    def _started(self) -> None:
        if not self._authenticator.ready:
            raise NotReady("authgate is starting: migrations and the admin key are not done")

    def _room_to_write(self) -> None:
        folder = self._data_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        if free < self._min_free:
            raise NotReady(
                f"the data folder's disk has {free} bytes free, under the {self._min_free} "
                "needed (ready_min_free_bytes)"
            )
