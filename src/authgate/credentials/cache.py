"""The hot path's memory: what the store vouched for, bounded in size and time.

One cache class for every credential kind (API keys by token digest, SigV4 secrets by
access key id): one clock, one miss signal (``get`` answers ``None`` when memory holds
no value; ``known_missing`` then says whether the store was asked recently and knew
nothing), and one guard against a store read that races a revocation (``generation``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from authgate.clock import Clock, now_utc
from authgate.metrics import record_cache
from authgate.principal import Principal

if TYPE_CHECKING:
    from authgate.sigv4.verify import AccessKeySecret

__all__ = ["KeyCache", "SecretCache", "TtlCache"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    # Epoch seconds until which this entry is trusted without a new look at the store.
    until: float


class TtlCache(Generic[V]):
    """lookup key → value, each value belonging to a credential id (``owner``) so that
    a revocation, which names the credential, finds its entry.

    Reads take no lock (a dict lookup is atomic under the GIL); writers take one so the
    id index stays in step. Eviction is oldest-first, which is cheap and good enough: an
    entry that falls out is simply looked up again. Misses are kept apart from values,
    each bounded on its own, so a flood of unknown credentials cannot push the known
    ones out.

    Time is the runtime's clock (injectable for tests), the one credentials expire by;
    the real one is read as ``time.time()``, which the hot path can afford on every
    request.
    """

    # The ``cache`` label of its lookups (``authgate.metrics``).
    metric_name = "credentials"

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        negative_ttl: float,
        owner: Callable[[V], str],
        clock: Clock = now_utc,
    ) -> None:
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._owner = owner
        self._now: Callable[[], float] = (
            time.time if clock is now_utc else lambda: clock().timestamp()
        )
        self._entries: dict[str, _Entry[V]] = {}
        self._misses: dict[str, float] = {}
        self._keys_by_owner: dict[str, str] = {}
        self._lock = threading.Lock()
        # Bumped by every forget: a store read that started before a revocation must not
        # put the revoked credential back (see ``put``).
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read it before asking the store, and hand it to ``put`` / ``put_missing``."""
        return self._generation

    def get(self, key: str) -> V | None:
        """The remembered value, or ``None``: memory holds none (a known miss included)."""
        value = self._value(key)
        record_cache(self.metric_name, value is not None)
        return value

    def _value(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._now() >= entry.until:
            with self._lock:
                self._drop_locked(key)
            return None
        return entry.value

    def known_missing(self, key: str) -> bool:
        """Whether the store said recently that it has nothing for ``key``."""
        until = self._misses.get(key)
        if until is None:
            return False
        if self._now() >= until:
            self._misses.pop(key, None)
            return False
        return True

    def holds(self, key: str) -> bool:
        """Whether memory can answer for ``key`` (a value or a known miss) without the store."""
        # Not a lookup of its own: the one that follows is counted.
        return self._value(key) is not None or self.known_missing(key)

    def put(
        self,
        key: str,
        value: V,
        *,
        generation: int | None = None,
        until: float | None = None,
    ) -> None:
        """Remember ``value`` for the TTL, or until ``until`` (epoch seconds) when that
        comes first; with ``generation`` (read before the store was asked), skip it if
        anything was forgotten meanwhile, since the answer may predate a revoke."""
        if self._ttl <= 0:
            return
        deadline = self._now() + self._ttl
        if until is not None:
            deadline = min(deadline, until)
        entry = _Entry(value, deadline)
        owner = self._owner(value)
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if key not in self._entries and len(self._entries) >= self._max_entries:
                self._drop_locked(next(iter(self._entries)))
            self._entries[key] = entry
            self._keys_by_owner[owner] = key
            self._misses.pop(key, None)

    def put_missing(self, key: str, *, generation: int | None = None) -> None:
        """Remember, for the negative TTL, that the store has nothing for ``key``."""
        if self._negative_ttl <= 0:
            return
        until = self._now() + self._negative_ttl
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if key not in self._misses and len(self._misses) >= self._max_entries:
                self._misses.pop(next(iter(self._misses)))
            self._misses[key] = until

    def forget_key(self, key_id: str) -> None:
        """Drop the entry of credential ``key_id`` (what revocations and the change feed
        name), and refuse any store answer read before now."""
        with self._lock:
            self._generation += 1
            key = self._keys_by_owner.pop(key_id, None)
            if key is not None:
                self._entries.pop(key, None)

    def forget(self, key: str) -> None:
        """Drop what is remembered under ``key``, a known miss included (a credential
        just created under it must work at once)."""
        with self._lock:
            self._generation += 1
            self._misses.pop(key, None)
            self._drop_locked(key)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._misses.clear()
            self._keys_by_owner.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_locked(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        owner = self._owner(entry.value)
        if self._keys_by_owner.get(owner) == key:
            del self._keys_by_owner[owner]


class KeyCache(TtlCache[Principal]):
    """token digest → principal of an API key the store vouched for."""

    metric_name = "api_key"

    def __init__(
        self, *, ttl: float, max_entries: int, negative_ttl: float, clock: Clock = now_utc
    ) -> None:
        super().__init__(
            ttl=ttl,
            max_entries=max_entries,
            negative_ttl=negative_ttl,
            owner=_principal_id,
            clock=clock,
        )

    def put(
        self,
        key: str,
        value: Principal,
        *,
        generation: int | None = None,
        until: float | None = None,
    ) -> None:
        """As ``TtlCache.put``, never past the key's own expiry."""
        if value.expires_at is not None:
            expiry = value.expires_at.timestamp()
            until = expiry if until is None else min(until, expiry)
        super().put(key, value, generation=generation, until=until)


class SecretCache(TtlCache["AccessKeySecret"]):
    """access key id → decrypted SigV4 key (revoked ones too, kept without their secret,
    so that the verifier refuses them from memory)."""

    metric_name = "sigv4_secret"

    def __init__(
        self, *, ttl: float, max_entries: int, negative_ttl: float, clock: Clock = now_utc
    ) -> None:
        super().__init__(
            ttl=ttl,
            max_entries=max_entries,
            negative_ttl=negative_ttl,
            owner=_secret_key_id,
            clock=clock,
        )


def _principal_id(principal: Principal) -> str:
    return principal.id


def _secret_key_id(secret: AccessKeySecret) -> str:
    return secret.key_id
