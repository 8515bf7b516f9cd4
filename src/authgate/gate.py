"""The decision for one request: rule, bypass, credential, authorization, rate limits.

Framework-free: adapters (ASGI, WSGI, forward auth, the token service) hand in a
``Request`` (``authgate.credentials.verifiers``), the rule and the canonical path, and render the
``Verdict``. ``Gate.decide`` is the whole decision, written once: it returns the verdict
when memory decides it, else a flow that yields the I/O it needs (``authgate.pipeline``),
which ``run_sync`` or ``run_async`` drives. The credential is the first registered
verifier's that claims the request.

Rate limits, and why they sit where they do:

- Failed authentications are counted per client address (``failure_rate_limit``; an
  IPv6 one by its /64, see ``ratelimit.address_bucket``), and only failures are
  counted, so a valid key costs nothing here. Once an address is over
  the limit, its failures are answered 429 instead of 401.
- A valid credential is never refused by the failure limit, even from an address that
  is over it: many clients can share one address (an office, a NAT), and one broken
  script must not lock out every key behind it. Guessing gains nothing from this: a
  failure from that address is still a 429, and tokens carry 238 random bits.
- Per-key limits (``key_rate_limit``) are off unless configured; with Redis they mean a
  round trip per request, which is why they are opt-in.
- Missing credentials are not failures (a browser that has not logged in yet is not
  guessing), and neither are bad credentials on public routes, which pass anonymously.

SigV4 requests (S3 clients) meet the same rules and limits; see ``authgate.s3.access``
for what passes them, and every refusal of one is an ``S3Error`` (S3's XML).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from types import GeneratorType

from limits.storage import MemoryStorage

from authgate import metrics
from authgate.credentials.verifiers import (
    AdminKey,
    ApiKeys,
    Decision,
    PostPolicyUploads,
    Request,
    SigV2AccessKeys,
    SigV4AccessKeys,
    StaticTokens,
    Verifier,
    VerifierFactory,
    external_jwts,
    load_verifiers,
)
from authgate.errors import AuthgateError, MissingCredentials, NotReady, OwnerDisabled
from authgate.facts import RequestFacts
from authgate.localhost import LOCAL_PRINCIPAL, bypass_enabled, is_local_request, might_be_local
from authgate.pipeline import Flow, Need, Step
from authgate.policy import InvalidPath, Policy, Rule
from authgate.principal import Principal
from authgate.ratelimit import RateDecision, address_bucket, parse_limit
from authgate.runtime import Runtime
from authgate.s3.access import S3Access, S3Pass, as_s3_error
from authgate.s3.cors import is_cors_preflight
from authgate.s3.sigv2 import UNSIGNED_FILTERS, S3SigV2
from authgate.sigv2 import SigV2Result, SigV2Verifier
from authgate.sigv4 import AccessDenied, SigV4Result
from authgate.trusted_proxies import TrustedProxies

__all__ = ["Gate", "Verdict"]

log = logging.getLogger("authgate.gate")


@dataclass(slots=True)
class Verdict:
    """What the adapter does: pass with ``principal`` (``None`` = anonymous), or answer
    ``error``. ``rate`` carries the per-key limit's headers for a passing request; ``s3``
    what is left to check of a verified SigV4 request (its body, a ListBuckets answer)."""

    principal: Principal | None = None
    error: AuthgateError | None = None
    rate: RateDecision | None = None
    s3: S3Pass | None = None


_NOT_READY = NotReady()
_ANONYMOUS = Verdict()
_LOCAL = Verdict(LOCAL_PRINCIPAL)
_FAILURES = "authgate-auth-failures"
_PER_KEY = "authgate-key"

# A condition a principal meets after the rule: the verdict, or a flow that finds it.
Condition = Callable[[Principal, Verdict], Step[Verdict]]


def _verifier_failed(verifier: Verifier | None, answered: str | None = None) -> Verdict:
    # Fail closed, on every rule: the client gets a 500 and the log the traceback.
    if answered is None:
        log.exception("credential verifier %r failed; the request is refused", verifier)
    else:
        log.error("credential verifier %r %s; the request is refused", verifier, answered)
    error = AuthgateError()
    s3 = isinstance(verifier, SigV4AccessKeys | SigV2AccessKeys)
    return Verdict(error=as_s3_error(error) if s3 else error)


def _unsigned_refusal() -> AccessDenied:
    return AccessDenied("Access Denied: the request is not signed, and no rule admits it unsigned.")


class Gate:
    def __init__(
        self,
        runtime: Runtime,
        rules: Iterable[Rule],
        *,
        reserved_prefix: str | None = None,
        listen_host: str | None = None,
        verifiers: Sequence[Verifier | VerifierFactory | str] = (),
        local_routes: Iterable[str] = (),
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
        # A limiter in memory counts on the event loop; Redis needs the worker thread.
        self.limiter_in_memory = isinstance(runtime.limiter.storage, MemoryStorage)
        self.reserved = reserved_prefix.rstrip("/").lower() if reserved_prefix else None
        # authgate's own paths the bypass admits all the same (a local scraper of metrics).
        self.local_routes = frozenset(path.lower() for path in local_routes)
        self.s3 = S3Access.from_runtime(runtime, self.proxies)
        # Paths an S3-compatible store serves (``s3_paths``), in the rules' pattern syntax.
        self.s3_paths = tuple(Rule("*", path) for path in settings.s3_paths)
        self.sigv4 = SigV4AccessKeys(self.s3)
        # SigV2 first: it claims any request with a SigV2 part, and refuses a mixed one.
        self.s3_verifiers: tuple[Verifier, ...] = (self.sigv4,)
        if settings.sigv2:
            v2 = SigV2Verifier(
                runtime.access_keys.secret_lookup,
                clock=runtime.clock,
                unsigned_params=UNSIGNED_FILTERS,
            )
            self.s3_verifiers = (SigV2AccessKeys(S3SigV2(self.s3, v2)), self.sigv4)
        self.post_policy = PostPolicyUploads(self.s3, runtime)
        authenticator = runtime.authenticator
        # authgate's own credentials: the only ones its own routes take.
        self.own_verifiers: tuple[Verifier, ...] = (
            AdminKey(authenticator),
            StaticTokens(authenticator),
            ApiKeys(authenticator),
        )
        # Custom ones (the ``verifiers`` setting, then the argument) after the built-ins.
        self.verifiers: tuple[Verifier, ...] = (
            *self.s3_verifiers,
            self.post_policy,
            *external_jwts(runtime),  # before API keys, which claim every bearer token
            *self.own_verifiers,
            *load_verifiers(runtime, verifiers),
        )
        # What a principal must still meet once the rule lets it through. Memory answers
        # a request outright only when this is empty: a new condition goes in this list,
        # and the short way closes by itself.
        self.conditions: tuple[Condition, ...] = (
            (self._per_key_limit,) if self.key_limit is not None else ()
        )
        # id(rule) -> the verdict of the last principal that rule let through: rules and
        # principals never change, so for that principal an identity check repeats it.
        self._passed: dict[int, Verdict] = {}
        self._remembered = authenticator.remembered_digest

    def rule_for(self, method: str, match_path: str) -> Rule:
        """The rule for the path; ``InvalidPath`` when the path reads two ways.

        Tomcat, Jetty and Spring drop a segment's ``;…`` parameters before routing, so
        ``/admin;x/panel`` is their ``/admin/panel``; a rule chosen on one reading must be
        the rule of the other, or the request is refused rather than guessed at."""
        rule = self.policy.match(method, match_path)
        if ";" in match_path:
            dropped = "/".join(segment.split(";", 1)[0] for segment in match_path.split("/"))
            if self.policy.match(method, dropped) is not rule:
                raise InvalidPath(
                    "A ';' in the path picks another rule than the same path without its "
                    "';' parameters, as some servers read it: refusing to guess."
                )
        return rule

    def is_reserved(self, match_path: str) -> bool:
        if self.reserved is None:
            return False
        lowered = match_path.lower()
        return lowered == self.reserved or lowered.startswith(self.reserved + "/")

    def is_s3_path(self, match_path: str) -> bool:
        """Whether the store behind ``match_path`` speaks S3 (never authgate's own)."""
        if not self.s3_paths or self.is_reserved(match_path):
            return False
        return any(path.matches("GET", match_path) for path in self.s3_paths)

    def client_address(self, facts: RequestFacts) -> str | None:
        return self.proxies.client_address(facts)

    def decide(self, request: Request, rule: Rule, match_path: str) -> Step[Verdict]:
        """The verdict for ``request`` under ``rule``: itself when memory decides it,
        else the flow that finds it (``authgate.pipeline.run_sync`` / ``run_async``)."""
        recorder = metrics.recorder
        if recorder is None:
            return self._decide(request, rule, match_path)
        started = perf_counter()
        step = self._decide(request, rule, match_path)
        if isinstance(step, Verdict):
            recorder.decided(step.principal, step.error, perf_counter() - started)
            return step
        return self._recorded(step, started)

    def _recorded(self, flow: Flow[Verdict], started: float) -> Flow[Verdict]:
        verdict = yield from flow
        metrics.record_decision(verdict.principal, verdict.error, perf_counter() - started)
        return verdict

    def _decide(self, request: Request, rule: Rule, match_path: str) -> Step[Verdict]:
        if not self.enabled and not self.is_reserved(match_path):
            return _ANONYMOUS
        s3_path = self.is_s3_path(match_path)
        if s3_path and is_cors_preflight(request.facts()):
            return _ANONYMOUS  # the store's CORS rules answer it (authgate.s3.cors)
        if not self.conditions and not request.may_sign:
            # The short way, for a bearer token memory knows: the built-in token kinds
            # share one memory (``Authenticator.remembered_digest``), a token it knows is
            # theirs whatever the verifier order, and no condition follows the rule.
            token_digest = request.digest()
            if token_digest is not None:
                principal = self._remembered(token_digest)
                if principal is not None:
                    passed = self._passed.get(id(rule))
                    if passed is not None and passed.principal is principal:
                        return passed
                    return self._pass(principal, rule)
        reserved = self.reserved is not None and self.is_reserved(match_path)
        verifier = None
        # Never under authgate's own prefix: its routes take authgate's credentials only.
        candidate: Verifier | None = None
        try:
            for candidate in self.own_verifiers if reserved else self.verifiers:
                if candidate.claims(request):
                    verifier = candidate
                    break
        except Exception:
            return _verifier_failed(candidate)
        decision: Step[Decision]
        if not self.authenticator.ready:
            decision = _NOT_READY
        elif verifier is None:
            credential = request.credential()
            decision = credential if isinstance(credential, AuthgateError) else _NOT_READY
        else:
            try:
                decision = verifier.verify(request)
            except Exception:
                return _verifier_failed(verifier)
        if (
            type(decision) is Principal
            and not self.conditions
            and verifier not in self.s3_verifiers
        ):
            # Memory vouched for it and nothing but the rule is left: no flow at all.
            return self._pass(decision, rule)
        bypassable = not reserved or match_path.lower() in self.local_routes
        return self._flow(request, verifier, decision, rule, bypassable, s3_path)

    def _flow(
        self,
        request: Request,
        verifier: Verifier | None,
        step: Step[Decision],
        rule: Rule,
        bypassable: bool,
        s3_path: bool = False,
    ) -> Flow[Verdict]:
        decision: object
        if type(step) is not GeneratorType:
            decision = step
        else:
            try:
                decision = yield from step
            except Exception:
                return _verifier_failed(verifier)
        if not isinstance(decision, Principal | AuthgateError):
            return _verifier_failed(verifier, f"answered {type(decision).__name__}")
        verdict = yield from self._judge(request, decision, rule, bypassable, s3_path)
        if verifier in self.s3_verifiers:
            return self._s3_verdict(request, verdict, rule)
        if verifier is self.post_policy:
            # A policy that fails is refused even on a public rule: the form would reach
            # the store with conditions nobody checked.
            error = decision if isinstance(decision, AuthgateError) else verdict.error
            if error is not None:
                return Verdict(verdict.principal, as_s3_error(verdict.error or error))
        return verdict

    def _pass(self, principal: Principal, rule: Rule) -> Verdict:
        """The verdict for a principal that only the rule is left to judge."""
        passed = self._passed.get(id(rule))
        if passed is not None and passed.principal is principal:
            return passed
        refusal = rule.authorize(principal) if not rule.public else None
        if refusal is not None:
            return Verdict(principal, refusal)
        verdict = self._passed[id(rule)] = Verdict(principal)
        return verdict

    def _authorize(self, principal: Principal, rule: Rule) -> AuthgateError | None:
        if rule.public:
            return None
        passed = self._passed.get(id(rule))
        if passed is not None and passed.principal is principal:
            return None
        return rule.authorize(principal)

    def _judge(
        self, request: Request, decision: Decision, rule: Rule, bypassable: bool, s3_path: bool
    ) -> Flow[Verdict]:
        if isinstance(decision, Principal):
            refusal = self._authorize(decision, rule)
            verdict = Verdict(decision, refusal)
            for condition in self.conditions:
                if verdict.error is not None:
                    break
                step = condition(decision, verdict)
                verdict = step if isinstance(step, Verdict) else (yield from step)
            return verdict
        if isinstance(decision, MissingCredentials):
            # The bypass applies only without a credential (a local client testing its key
            # sees what everyone else sees), and never to authgate's own routes but the
            # ``local_routes``.
            if self.bypass and bypassable and might_be_local(request.facts()):
                # Whose socket it is, the kernel says: I/O.
                if (yield Need(partial(is_local_request, request.facts()))):
                    return _LOCAL
            if rule.public:
                return _ANONYMOUS
            # An S3 client reads S3's XML only; a bearer challenge means nothing to it.
            return Verdict(error=_unsigned_refusal() if s3_path else decision)
        if isinstance(decision, NotReady):
            return Verdict(error=decision)
        if rule.public:
            return _ANONYMOUS
        return (yield from self._failed(request, decision))

    def _per_key_limit(self, principal: Principal, verdict: Verdict) -> Step[Verdict]:
        assert self.key_limit is not None
        hit = partial(self.limiter.hit, self.key_limit, _PER_KEY, principal.id)
        return self._count(principal, hit)

    def _count(self, principal: Principal, hit: Callable[[], RateDecision]) -> Flow[Verdict]:
        try:
            rate: RateDecision = yield Need(hit, in_memory=self.limiter_in_memory)
        except NotReady as exc:
            return Verdict(principal, exc)
        if not rate.allowed:
            return Verdict(principal, rate.error(), rate)
        return Verdict(principal, rate=rate)

    def _s3_verdict(self, request: Request, verdict: Verdict, rule: Rule) -> Verdict:
        """A SigV4 request's verdict: refusals in S3's words, and a verified key's bucket
        grants, checked after the rule (which its key may pass like any other)."""
        principal = verdict.principal
        if verdict.error is not None:
            return Verdict(principal, as_s3_error(verdict.error), verdict.rate)
        result = request.detail
        if principal is None or not isinstance(result, SigV4Result | SigV2Result):
            return verdict
        if rule.public:
            # Anyone may: a verified key needs no grant, but its body is still checked.
            return Verdict(principal, rate=verdict.rate, s3=S3Pass(result))
        granted = self.s3.authorize(request.facts(), result)
        if isinstance(granted, AuthgateError):
            return Verdict(principal, granted, verdict.rate)
        return Verdict(principal, rate=verdict.rate, s3=granted)

    def _audit_refusal(self, error: OwnerDisabled, client: str | None) -> None:
        try:
            self.lifecycle.audit_disabled_owner(error, client)
        except NotReady:
            log.warning("a disabled user's key was refused; the audit log is unreachable")

    def _failed(self, request: Request, error: AuthgateError) -> Flow[Verdict]:
        client = self.client_address(request.facts())
        if isinstance(error, OwnerDisabled):
            # Only the store's answer names a disabled owner; the audit log is the store.
            yield Need(partial(self._audit_refusal, error, client))
        if self.failure_limit is None:
            return Verdict(error=error)
        hit = partial(self.limiter.hit, self.failure_limit, _FAILURES, address_bucket(client))
        try:
            rate: RateDecision = yield Need(hit, in_memory=self.limiter_in_memory)
        except NotReady as exc:
            return Verdict(error=exc)
        if not rate.allowed:
            return Verdict(error=rate.error())
        return Verdict(error=error)
