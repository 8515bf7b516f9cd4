"""Failed password logins, limited per account and per client address.

Only a failed password check counts. A success costs nothing (a team behind one NAT logs
in all day), and neither does a request refused before the password is checked (a
malformed body, an unknown scope). Two counts, both on the shared limiter:

- per account: the normalised email (``users.email_key``), whether or not a user has it,
  so a guesser spreading tries over many addresses still gets five, and the answer for
  an unknown email is the answer for a known one;
- per client address, with a higher cap: an IPv4 address, or the IPv6 /64 around an IPv6
  one (``ratelimit.address_bucket``), since one subscriber is handed a whole /64.

Both are moving windows (``exact=True``): five failures mean five, at any time.

Counting only after the check leaves a window: attempts sent at once would all be judged
on the count before any of them failed. So each instance also counts the attempts it has
in flight on a key and refuses one that would exceed the limit if all of them failed;
across instances the window is at most the attempts in flight on each.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from limits import RateLimitItem

from authgate.ratelimit import RateDecision, RateLimiter, address_bucket, parse_limit

__all__ = ["LoginAttempt", "LoginLimits"]

_ACCOUNT = "login-account"
_ADDRESS = "login-address"


@dataclass(frozen=True, slots=True)
class _Count:
    item: RateLimitItem
    name: str
    ident: str


class LoginAttempt:
    """One password check under way; ``failed()`` counts it, a success counts nothing."""

    def __init__(self, limiter: RateLimiter, counts: tuple[_Count, ...], before: RateDecision):
        self._limiter = limiter
        self._counts = counts
        self.decision = before  # the tighter count, as it stood before this attempt

    def failed(self) -> RateDecision:
        decisions = [self._limiter.hit(c.item, c.name, c.ident, exact=True) for c in self._counts]
        self.decision = _tightest(decisions)
        return self.decision


class LoginLimits:
    def __init__(self, limiter: RateLimiter, *, per_account: str, per_address: str) -> None:
        self._limiter = limiter
        self._account = parse_limit(per_account)
        self._address = parse_limit(per_address)
        self._lock = threading.Lock()
        self._in_flight: Counter[tuple[str, str]] = Counter()

    @contextmanager
    def attempt(self, account: str, address: str | None) -> Iterator[LoginAttempt]:
        """Refuse (``RateLimited``, 429) when either count is spent, else let one password
        check run; the caller reports a failure with ``LoginAttempt.failed``."""
        counts = (
            _Count(self._account, _ACCOUNT, account),
            _Count(self._address, _ADDRESS, address_bucket(address)),
        )
        decisions = [self._limiter.test(c.item, c.name, c.ident, exact=True) for c in counts]
        keys = [(c.name, c.ident) for c in counts]
        with self._lock:
            for key, decision in zip(keys, decisions, strict=True):
                if not decision.allowed or decision.remaining <= self._in_flight[key]:
                    raise replace(decision, allowed=False, remaining=0).error()
            self._in_flight.update(keys)
        try:
            yield LoginAttempt(self._limiter, counts, _tightest(decisions))
        finally:
            with self._lock:
                self._in_flight.subtract(keys)
                for key in keys:
                    if self._in_flight[key] <= 0:
                        del self._in_flight[key]


def _tightest(decisions: list[RateDecision]) -> RateDecision:
    # The account's count first: on a tie, it is the one a person at the keyboard meets.
    return min(decisions, key=lambda decision: decision.remaining)
