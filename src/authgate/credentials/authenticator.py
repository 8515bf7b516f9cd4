"""The core: request facts in, a principal or an error out. No framework, no SQL."""

from __future__ import annotations

import hmac
import threading
from functools import partial
from typing import Protocol

from authgate.clock import Clock, now_utc
from authgate.credentials.cache import KeyCache
from authgate.credentials.headers import extract_token
from authgate.credentials.static_tokens import StaticTokens
from authgate.credentials.tokens import digest, digest_bytes, is_well_formed
from authgate.errors import AuthgateError, InvalidCredentials, NotReady, OwnerDisabled
from authgate.facts import RequestFacts
from authgate.manage.usage import UsageBuffer
from authgate.pipeline import Flow, Need, Step, run_sync
from authgate.principal import Principal
from authgate.store.records import ApiKeyRecord

__all__ = ["Authenticator", "Decision", "KeyLookup"]

Decision = Principal | AuthgateError

_INVALID = InvalidCredentials()
_NOT_READY = NotReady()
# How long a lookup waits for the same digest's lookup already under way, by default: the
# store's own deadline (``Settings.store_timeout``), which that lookup cannot outlast.
_FOLLOW_SECONDS = 1.0


def run_sync_decision(step: Step[Decision]) -> Decision:
    decision: Decision = run_sync(step)  # type: ignore[assignment]
    return decision


class _Flight:
    """A store read under way, for the lookups of the same digest that wait for it."""

    __slots__ = ("done", "failure")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failure: NotReady | None = None


class KeyLookup(Protocol):
    def find_key_by_digest(self, digest: str) -> ApiKeyRecord | None: ...


ADMIN_PRINCIPAL = Principal(id="admin", name="bootstrap admin key", kind="admin_key", role="admin")


def principal_for_key(record: ApiKeyRecord) -> Principal:
    return Principal(
        id=record.id,
        name=record.name,
        kind="api_key",
        scopes=frozenset(record.scopes),
        role=record.owner_role,
        owner_id=record.owner_id,
        owner_email=record.owner_email,
        expires_at=record.expires_at,
    )


class Authenticator:
    """Decides who a request is, touching the store only when memory cannot answer.

    Order matters for speed: a cached digest is already known good, so the format check
    (which costs more than the lookup) runs only on a miss; a malformed token is refused
    before any store lookup.
    """

    def __init__(
        self,
        *,
        store: KeyLookup,
        cache: KeyCache,
        static_tokens: StaticTokens,
        usage: UsageBuffer,
        token_prefix: str,
        admin_digest: str | None = None,
        clock: Clock = now_utc,
        follow_seconds: float = _FOLLOW_SECONDS,
    ) -> None:
        self._store = store
        self._cache = cache
        self._static = static_tokens
        self._usage = usage
        self._prefix = token_prefix
        self._admin_digest = admin_digest
        self._clock = clock
        self.ready = False
        # digest -> the store read under way for it (see ``_lookup``).
        self._in_flight: dict[str, _Flight] = {}
        self._follow_seconds = follow_seconds
        self._in_flight_lock = threading.Lock()

    def set_admin_digest(self, admin_digest: str) -> None:
        self._admin_digest = admin_digest

    def authenticate(self, facts: RequestFacts) -> Decision:
        """The decision for ``facts``' API key, static token or admin key, reading the
        store in this thread when memory cannot answer."""
        if not self.ready:
            return _NOT_READY
        token = extract_token(facts)
        if not isinstance(token, str):
            return token
        return self.authenticate_token(token)

    def authenticate_token(self, token: str) -> Decision:
        if not self.ready:
            return _NOT_READY
        token_digest = digest_bytes(token.encode("utf-8"))
        principal = self.remembered_digest(token_digest)
        if principal is not None:
            return principal
        return run_sync_decision(self.stored_key(token, token_digest))

    def token_step(self, token: str) -> Step[Decision]:
        """The decision for ``token`` when memory gives it, else the flow that reads the
        store for it."""
        if not self.ready:
            return _NOT_READY
        token_digest = digest(token)
        principal = self.remembered_digest(token_digest)
        if principal is not None:
            return principal
        return self.stored_key(token, token_digest)

    def remembered(self, token: bytes) -> Principal | None:
        """The principal of a token that memory vouches for (a cached key, a static token,
        the admin key), else ``None``."""
        return self.remembered_digest(digest_bytes(token))

    def remembered_digest(self, token_digest: str) -> Principal | None:
        """``remembered`` by the token's digest: the memory the admin key, static token
        and API key verifiers share, in one call for the gate's short way."""
        if not self.ready:
            return None
        principal = self._cache.get(token_digest)
        if principal is not None:
            self._usage.record(principal.id)
            return principal
        return self._static.lookup(token_digest) or self.admin_for(token_digest)

    # -- the parts, one per credential kind (``authgate.credentials.verifiers``) -----------------
    def admin_for(self, token_digest: str) -> Principal | None:
        if self._admin_digest is not None and hmac.compare_digest(token_digest, self._admin_digest):
            return ADMIN_PRINCIPAL
        return None

    def static_for(self, token_digest: str) -> Principal | None:
        return self._static.lookup(token_digest)

    def cached_key(self, token_digest: str) -> Principal | None:
        principal = self._cache.get(token_digest)
        if principal is not None:
            self._usage.record(principal.id)
        return principal

    def stored_key(self, token: str, token_digest: str) -> Step[Decision]:
        """An API key memory does not hold: refused at once when it is malformed or a
        known miss (before any lookup), else the flow that reads the store."""
        # Looking up by digest means the secret itself is never compared byte by byte,
        # so the time taken says nothing about how close a guess was.
        if not is_well_formed(token, self._prefix) or self._cache.known_missing(token_digest):
            return _INVALID
        return self._read(token_digest)

    def _read(self, token_digest: str) -> Flow[Decision]:
        decision: Decision = yield Need(partial(self._lookup, token_digest))
        return decision

    def _lookup(self, token_digest: str) -> Decision:
        """The store's answer, read once for all who ask at the same moment: when a busy
        key's cache entry ends, every request in flight with it misses at once, and
        without this each would take a worker thread to the store. The others wait for
        the first read and take its principal from memory. A store that failed the first
        read (down, or past its deadline) fails theirs too: they take its NotReady rather
        than wait out a deadline each. Any other outcome (a refusal, a revocation in
        between) they read for themselves."""
        with self._in_flight_lock:
            first = self._in_flight.get(token_digest)
            if first is None:
                flight = self._in_flight[token_digest] = _Flight()
        if first is not None:
            if not first.done.wait(self._follow_seconds):
                return NotReady("the store did not answer in time")
            principal = self._cache.get(token_digest)
            if principal is not None:
                self._usage.record(principal.id)
                return principal
            if first.failure is not None:
                return first.failure
            return self._read_store(token_digest)
        decision: Decision = _NOT_READY
        try:
            decision = self._read_store(token_digest)
            return decision
        finally:
            if isinstance(decision, NotReady):
                flight.failure = decision
            with self._in_flight_lock:
                del self._in_flight[token_digest]
            flight.done.set()

    def _read_store(self, token_digest: str) -> Decision:
        generation = self._cache.generation
        try:
            record = self._store.find_key_by_digest(token_digest)
        except NotReady as exc:
            return exc
        if record is None:
            self._cache.put_missing(token_digest)
            return _INVALID
        if not record.is_live(self._clock()):
            # Remembered as misses: revoked and expired keys never come back (and
            # disabling a user revokes their keys, so re-enabling brings none back).
            self._cache.put_missing(token_digest)
            if record.owner_id is not None and not record.owner_active:
                return OwnerDisabled(record.id, record.owner_id)
            return _INVALID
        principal = principal_for_key(record)
        self._cache.put(token_digest, principal, generation=generation)
        self._usage.record(principal.id)
        return principal
