"""The decision for one request: rule, bypass, credential, authorization, rate limits.

Framework-free: adapters (ASGI, WSGI) hand in request facts and the canonical path and
render what comes back. ``check(..., allow_io=False)`` answers from memory or returns
``None``; an async adapter then calls again with ``allow_io=True`` from a worker thread,
so the event loop never waits on the store or on Redis.

Rate limits, and why they sit where they do:

- Failed authentications are counted per client address (``failure_rate_limit``), and
  only failures are counted, so a valid key costs nothing here. Once an address is over
  the limit, its failures are answered 429 instead of 401.
- A valid credential is never refused by the failure limit, even from an address that
  is over it: many clients can share one address (an office, a NAT), and one broken
  script must not lock out every key behind it. Guessing gains nothing from this: a
  failure from that address is still a 429, and tokens carry 238 random bits.
- Per-key limits (``key_rate_limit``) are off unless configured; with Redis they mean a
  round trip per request, which is why they are opt-in.
- Missing credentials are not failures (a browser that has not logged in yet is not
  guessing), and neither are bad credentials on public routes, which pass anonymously.

SigV4 requests (S3 clients) meet the same rules and limits; see ``authgate.s3access``
for what passes them, and every refusal of one is an ``S3Error`` (S3's XML).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from limits.storage import MemoryStorage

from authgate.authenticator import Decision
from authgate.errors import AuthgateError, MissingCredentials, NotReady, OwnerDisabled
from authgate.facts import RequestFacts
from authgate.localhost import LOCAL_PRINCIPAL, bypass_enabled, is_local_request
from authgate.policy import Policy, Rule
from authgate.principal import Principal
from authgate.proxies import TrustedProxies
from authgate.ratelimit import RateDecision, parse_limit
from authgate.runtime import Runtime
from authgate.s3access import S3Access, S3Pass, as_s3_error, claims_s3_auth

__all__ = ["Gate", "Verdict"]

log = logging.getLogger("authgate.gate")

AuthLabel = Literal["yes", "no", "local"]


@dataclass(slots=True)
class Verdict:
    """What the adapter does: pass with ``principal`` (``None`` = anonymous), or answer
    ``error``. ``rate`` carries the per-key limit's headers for a passing request; ``s3``
    what is left to check of a verified SigV4 request (its body, a ListBuckets answer)."""

    principal: Principal | None = None
    error: AuthgateError | None = None
    rate: RateDecision | None = None
    s3: S3Pass | None = None

    @property
    def auth(self) -> AuthLabel:
        if self.principal is None:
            return "no"
        return "local" if self.principal.kind == "local" else "yes"


_NOT_READY = NotReady()
_ANONYMOUS = Verdict()
_LOCAL = Verdict(LOCAL_PRINCIPAL)
_FAILURES = "authgate-auth-failures"
_PER_KEY = "authgate-key"


def _decides_nothing(_token: bytes) -> None:
    return None


class Gate:
    def __init__(
        self,
        runtime: Runtime,
        rules: Iterable[Rule],
        *,
        reserved_prefix: str | None = None,
        listen_host: str | None = None,
    ) -> None:
        settings = runtime.settings
        self.policy = Policy(rules)
        self.authenticator = runtime.authenticator
        self.lifecycle = runtime.lifecycle
        self.limiter = runtime.limiter
        self.enabled = settings.auth_enabled
        self.bypass = bypass_enabled(settings, listen_host)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.failure_limit = (
            parse_limit(settings.failure_rate_limit) if settings.failure_rate_limit else None
        )
        self.key_limit = parse_limit(settings.key_rate_limit) if settings.key_rate_limit else None
        # The hot path: a credential memory vouches for, once it satisfies the rule, is the
        # whole decision unless a per-key limit must count it too. ``remembered(token)``
        # gives its principal, or ``None`` to decide nothing (the adapter then takes the
        # general path, ``check_credential``, which answers every case). Bound here, not
        # wrapped in a method: the call is a measurable share of a remembered request.
        memory_decides = self.enabled and self.key_limit is None
        self.remembered: Callable[[bytes], Principal | None] = (
            self.authenticator.remembered if memory_decides else _decides_nothing
        )
        # A limiter in memory can count on the event loop; Redis needs the worker thread.
        self.limiter_in_memory = isinstance(runtime.limiter.storage, MemoryStorage)
        self.reserved = reserved_prefix.rstrip("/").lower() if reserved_prefix else None
        self.s3 = S3Access.from_runtime(runtime, self.proxies)

    def rule_for(self, method: str, match_path: str) -> Rule:
        return self.policy.match(method, match_path)

    def is_reserved(self, match_path: str) -> bool:
        if self.reserved is None:
            return False
        lowered = match_path.lower()
        return lowered == self.reserved or lowered.startswith(self.reserved + "/")

    def client_address(self, facts: RequestFacts) -> str | None:
        return self.proxies.client_address(facts)

    def check(
        self, facts: RequestFacts, rule: Rule, match_path: str, *, allow_io: bool
    ) -> Verdict | None:
        """The verdict, or ``None`` when it needs I/O and ``allow_io`` is False."""
        if not self.enabled and not self.is_reserved(match_path):
            return _ANONYMOUS
        if self.key_limit is not None and not allow_io and not self.limiter_in_memory:
            return None
        # Never under authgate's own prefix: its routes take authgate's credentials only.
        if claims_s3_auth(facts) and not self.is_reserved(match_path):
            return self._check_sigv4(facts, rule, match_path, allow_io=allow_io)
        decision = self.authenticator.authenticate(facts, allow_io=allow_io)
        if decision is None:
            return None
        return self._judge(decision, rule, match_path, lambda: facts, allow_io=allow_io)

    def check_credential(
        self,
        credential: str | AuthgateError,
        rule: Rule,
        match_path: str,
        facts: Callable[[], RequestFacts],
        *,
        allow_io: bool,
    ) -> Verdict | None:
        """``check`` for an adapter that has already picked the token from the headers
        (``authgate.credentials.choose_token``); ``facts`` builds the request's facts,
        which only the bypass and failures need."""
        if not self.enabled and not self.is_reserved(match_path):
            return _ANONYMOUS
        if self.key_limit is not None and not allow_io and not self.limiter_in_memory:
            return None
        decision: Decision | None
        if isinstance(credential, str):
            decision = self.authenticator.authenticate_token(credential, allow_io=allow_io)
            if decision is None:
                return None
        elif not self.authenticator.ready:
            decision = _NOT_READY
        else:
            decision = credential
        return self._judge(decision, rule, match_path, facts, allow_io=allow_io)

    def _judge(
        self,
        decision: Decision,
        rule: Rule,
        match_path: str,
        facts: Callable[[], RequestFacts],
        *,
        allow_io: bool,
    ) -> Verdict | None:
        if isinstance(decision, Principal):
            if not rule.public:
                refusal = rule.authorize(decision)
                if refusal is not None:
                    return Verdict(decision, refusal)
            if self.key_limit is None:
                return Verdict(decision)
            try:
                rate = self.limiter.hit(self.key_limit, _PER_KEY, decision.id)
            except NotReady as exc:
                return Verdict(decision, exc)
            if not rate.allowed:
                return Verdict(decision, rate.error(), rate)
            return Verdict(decision, rate=rate)
        if isinstance(decision, MissingCredentials):
            # The bypass applies only without a credential (a local client testing its key
            # sees what everyone else sees), and never to authgate's own routes.
            if self.bypass and is_local_request(facts()) and not self.is_reserved(match_path):
                return _LOCAL
            return _ANONYMOUS if rule.public else Verdict(error=decision)
        if isinstance(decision, NotReady):
            return Verdict(error=decision)
        if rule.public:
            return _ANONYMOUS
        return self._failed(facts, decision, allow_io=allow_io)

    def _check_sigv4(
        self, facts: RequestFacts, rule: Rule, match_path: str, *, allow_io: bool
    ) -> Verdict | None:
        """``check`` for a SigV4 request: a failed signature counts as a failed attempt,
        a verified key then meets the rule, the per-key limit and its bucket grants."""
        if not self.authenticator.ready:
            return Verdict(error=as_s3_error(_NOT_READY))
        outcome = self.s3.authenticate(facts, allow_io=allow_io)
        if outcome is None:
            return None
        if isinstance(outcome, AuthgateError):
            if rule.public:
                return _ANONYMOUS
            failed = self._failed(lambda: facts, outcome, allow_io=allow_io)
            if failed is None or failed.error is None:
                return failed
            return Verdict(error=as_s3_error(failed.error))
        principal, result = outcome
        verdict = self._judge(principal, rule, match_path, lambda: facts, allow_io=allow_io)
        if verdict is None:
            return None
        if verdict.error is not None:
            return Verdict(principal, as_s3_error(verdict.error), verdict.rate)
        if rule.public:
            # Anyone may: a verified key needs no grant, but its body is still checked.
            return Verdict(principal, rate=verdict.rate, s3=S3Pass(result))
        granted = self.s3.authorize(facts, result)
        if isinstance(granted, AuthgateError):
            return Verdict(principal, granted, verdict.rate)
        return Verdict(principal, rate=verdict.rate, s3=granted)

    def _audit_refusal(self, error: AuthgateError, client: str | None) -> None:
        # Only the store's answer names a disabled owner, so this runs off the event loop.
        if isinstance(error, OwnerDisabled):
            try:
                self.lifecycle.audit_disabled_owner(error, client)
            except NotReady:
                log.warning("a disabled user's key was refused; the audit log is unreachable")

    def _failed(
        self, facts: Callable[[], RequestFacts], error: AuthgateError, *, allow_io: bool
    ) -> Verdict | None:
        if self.failure_limit is not None and not allow_io and not self.limiter_in_memory:
            return None
        client = self.client_address(facts())
        self._audit_refusal(error, client)
        if self.failure_limit is None:
            return Verdict(error=error)
        try:
            rate = self.limiter.hit(self.failure_limit, _FAILURES, client or "unknown")
        except NotReady as exc:
            return Verdict(error=exc)
        if not rate.allowed:
            return Verdict(error=rate.error())
        return Verdict(error=error)
