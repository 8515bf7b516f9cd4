"""Rate limits on the ``limits`` library: memory by default, Redis when shared.

A thin policy layer: which limit applies is decided by callers; this module turns a hit
into a decision and the standard ``RateLimit-*`` / ``Retry-After`` headers.

With Redis, every hit goes through a circuit breaker (``authgate.breaker``). When
Redis cannot count, the hit is counted in this instance's memory instead (``"memory"``:
logged once per outage, counted in ``fallback_hits``), or refused with 503
(``"closed"``). ``limits`` has no fallback storage of its own in this version.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any, Literal

from limits import RateLimitItem, parse
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.strategies import RateLimiter as Strategy
from limits.util import WindowStats

from authgate.breaker import CircuitBreaker, CircuitOpen
from authgate.errors import ConfigurationError, NotReady, RateLimited
from authgate.metrics import record_rate_limited

__all__ = ["RateDecision", "RateLimiter", "address_bucket", "parse_limit"]

log = logging.getLogger("authgate.ratelimit")


# One subscriber is handed a whole IPv6 /64: counting its addresses apart counts nothing.
IPV6_CLIENT_PREFIX = 64


def address_bucket(address: str | None) -> str:
    """The key one client's address counts under: an IPv4 address (an IPv4-mapped IPv6
    one unwrapped), the /64 of an IPv6 address, the text itself if it is no address."""
    if not address:
        return "unknown"
    try:
        parsed = ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(parsed)


def parse_limit(text: str) -> RateLimitItem:
    """``"5/15 minutes"``, ``"100 per minute"``: the ``limits`` notation."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigurationError(f"invalid rate limit {text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window frees a slot

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after))
        return headers

    def error(self) -> RateLimited:
        return RateLimited(
            f"Too many requests; retry in {max(1, self.reset_after)} seconds.",
            headers=self.headers(),
        )


class RateLimiter:
    """One storage (``memory://`` or ``redis://…``), any number of named limits.

    ``breaker`` guards a shared storage; ``on_failure`` says what a hit does when the
    breaker will not let it reach the storage."""

    def __init__(
        self,
        storage_url: str = "memory://",
        *,
        breaker: CircuitBreaker | None = None,
        on_failure: Literal["memory", "closed"] = "memory",
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            storage = storage_from_string(storage_url, **dict(storage_options or {}))
        except LimitsConfigurationError as exc:
            raise ConfigurationError(f"rate limit storage {storage_url!r}: {exc}") from None
        if not isinstance(storage, Storage):
            raise ConfigurationError(f"rate limit storage {storage_url!r} is async-only")
        self.storage = storage
        # The counter estimates the previous window's share, which lets an event or two
        # more through as a window turns; small caps that guard passwords keep each
        # event's time instead (``exact=True``), cheap at a few dozen events.
        self._strategies = _strategies(self.storage)
        self._breaker = breaker if not isinstance(storage, MemoryStorage) else None
        self._on_failure = on_failure
        self._fallbacks = _strategies(MemoryStorage())
        self._fallback_lock = threading.Lock()
        self._falling_back = False
        self.fallback_hits = 0  # hits counted in memory because the storage could not

    def hit(
        self, item: RateLimitItem, *identifiers: str, cost: int = 1, exact: bool = False
    ) -> RateDecision:
        """Count one event; the decision says whether it was still within the limit."""

        def count(strategy: Strategy) -> tuple[bool, WindowStats]:
            allowed = strategy.hit(item, *identifiers, cost=cost)
            return allowed, strategy.get_window_stats(item, *identifiers)

        decision = self._decide(item, count, exact)
        if not decision.allowed:
            record_rate_limited(identifiers[0] if identifiers else "unnamed")
        return decision

    def test(self, item: RateLimitItem, *identifiers: str, exact: bool = False) -> RateDecision:
        """Whether one more event would be allowed, without counting it."""

        def peek(strategy: Strategy) -> tuple[bool, WindowStats]:
            allowed = strategy.test(item, *identifiers)
            return allowed, strategy.get_window_stats(item, *identifiers)

        return self._decide(item, peek, exact)

    def ping(self) -> None:
        """Raise ``NotReady`` unless the shared storage answers (through the breaker)."""
        if self._breaker is None:
            return

        def check() -> None:
            if not self.storage.check():
                raise ConnectionError("no answer to PING")

        self._breaker.call(check)

    def reset(self) -> None:
        self.storage.reset()
        self._fallbacks[False].storage.reset()

    def _decide(
        self,
        item: RateLimitItem,
        ask: Callable[[Strategy], tuple[bool, WindowStats]],
        exact: bool,
    ) -> RateDecision:
        strategy = self._strategies[exact]
        try:
            if self._breaker is None:
                allowed, stats = ask(strategy)
            else:
                allowed, stats = self._breaker.call(lambda: ask(strategy))
                if self._falling_back:
                    self._back_from_fallback()
        except CircuitOpen as exc:
            if self._on_failure == "closed":
                raise NotReady("the rate limit store cannot be reached") from exc
            allowed, stats = self._count_in_memory(ask, self._fallbacks[exact], exc)
        except Exception as exc:
            # A limiter that cannot count fails closed rather than letting guesses through.
            raise NotReady("the rate limit store cannot be reached") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, stats.remaining, reset_after)

    def _count_in_memory(
        self,
        ask: Callable[[Strategy], tuple[bool, WindowStats]],
        fallback: Strategy,
        why: CircuitOpen,
    ) -> tuple[bool, WindowStats]:
        with self._fallback_lock:
            self.fallback_hits += 1
            if not self._falling_back and not why.busy:
                self._falling_back = True
                log.warning("rate limits counted in this instance's memory: %s", why.detail)
        return ask(fallback)

    def _back_from_fallback(self) -> None:
        with self._fallback_lock:
            if self._falling_back:
                self._falling_back = False
                log.warning(
                    "rate limits shared through the storage again (%d hits counted in memory)",
                    self.fallback_hits,
                )


def _strategies(storage: Storage) -> dict[bool, Strategy]:
    """The estimating counter (``False``) and the exact moving window (``True``)."""
    return {
        False: SlidingWindowCounterRateLimiter(storage),
        True: MovingWindowRateLimiter(storage),
    }
