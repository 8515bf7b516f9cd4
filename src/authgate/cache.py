"""The hot path's memory: verified credentials by digest, bounded in size and time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from authgate.clock import Clock, now_utc
from authgate.principal import Principal

__all__ = ["KeyCache"]


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    # Epoch seconds until which this entry is trusted without a new look at the store:
    # the cache's time-to-live, or the key's own expiry when that comes first. One clock
    # (the wall clock keys expire by) keeps the hot path to one clock read.
    until: float


class KeyCache:
    """digest → principal for keys the store vouched for, plus a short memory of misses.

    Reads take no lock (a dict lookup is atomic under the GIL); writers take one so the
    key-id index stays in step. Eviction is oldest-first, which is cheap and good enough:
    a key that falls out is simply looked up again.
    """

    def __init__(
        self, *, ttl: float, max_entries: int, negative_ttl: float, clock: Clock = now_utc
    ) -> None:
        self._ttl = ttl
        # Key expiry follows the runtime's clock (injectable for tests); the real one is
        # read as time.time(), which the hot path can afford on every request.
        self._wall: Callable[[], float] = (
            time.time if clock is now_utc else lambda: clock().timestamp()
        )
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._misses: dict[str, float] = {}
        self._digests_by_key: dict[str, str] = {}
        self._lock = threading.Lock()
        # Bumped by every forget: a store read that started before a revocation must not
        # put the revoked key back (see ``put``).
        self._generation = 0

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self._wall() >= entry.until:
            self._drop(digest)
            return None
        return entry.principal

    def known_missing(self, digest: str) -> bool:
        deadline = self._misses.get(digest)
        if deadline is None:
            return False
        if time.monotonic() >= deadline:
            self._misses.pop(digest, None)
            return False
        return True

    @property
    def generation(self) -> int:
        return self._generation

    def put(self, digest: str, principal: Principal, *, generation: int | None = None) -> None:
        """Remember a verified key; with ``generation`` (read before the store was asked),
        skip it if anything was forgotten meanwhile, since the answer may predate a revoke."""
        until = self._wall() + self._ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at.timestamp())
        entry = _Entry(principal, until)
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if len(self._entries) >= self._max_entries:
                oldest = next(iter(self._entries))
                self._drop_locked(oldest)
            self._entries[digest] = entry
            self._digests_by_key[principal.id] = digest
            self._misses.pop(digest, None)

    def put_missing(self, digest: str) -> None:
        if self._negative_ttl <= 0:
            return
        with self._lock:
            if len(self._misses) >= self._max_entries:
                self._misses.pop(next(iter(self._misses)))
            self._misses[digest] = time.monotonic() + self._negative_ttl

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            self._generation += 1
            digest = self._digests_by_key.pop(key_id, None)
            if digest is not None:
                self._entries.pop(digest, None)

    def forget_digest(self, digest: str) -> None:
        with self._lock:
            self._misses.pop(digest, None)
            self._drop_locked(digest)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._misses.clear()
            self._digests_by_key.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, digest: str) -> None:
        with self._lock:
            self._drop_locked(digest)

    def _drop_locked(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None and self._digests_by_key.get(entry.principal.id) == digest:
            del self._digests_by_key[entry.principal.id]
