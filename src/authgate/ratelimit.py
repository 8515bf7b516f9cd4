"""Rate limits on the ``limits`` library: memory by default, Redis when shared.

A thin policy layer: which limit applies is decided by callers; this module turns a hit
into a decision and the standard ``RateLimit-*`` / ``Retry-After`` headers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from authgate.errors import ConfigurationError, NotReady, RateLimited

__all__ = ["RateDecision", "RateLimiter", "parse_limit"]


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
    """One storage (``memory://`` or ``redis://…``), any number of named limits."""

    def __init__(self, storage_url: str = "memory://") -> None:
        try:
            storage = storage_from_string(storage_url)
        except LimitsConfigurationError as exc:
            raise ConfigurationError(f"rate limit storage {storage_url!r}: {exc}") from None
        if not isinstance(storage, Storage):
            raise ConfigurationError(f"rate limit storage {storage_url!r} is async-only")
        self.storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> RateDecision:
        """Count one event; the decision says whether it was still within the limit."""
        try:
            allowed = self._strategy.hit(item, *identifiers, cost=cost)
            stats = self._strategy.get_window_stats(item, *identifiers)
        except Exception as exc:
            # A limiter that cannot count fails closed rather than letting guesses through.
            raise NotReady("the rate limit store cannot be reached") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, stats.remaining, reset_after)

    def test(self, item: RateLimitItem, *identifiers: str) -> RateDecision:
        """Whether one more event would be allowed, without counting it."""
        try:
            allowed = self._strategy.test(item, *identifiers)
            stats = self._strategy.get_window_stats(item, *identifiers)
        except Exception as exc:
            raise NotReady("the rate limit store cannot be reached") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, stats.remaining, reset_after)

    def reset(self) -> None:
        self.storage.reset()
