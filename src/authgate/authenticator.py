"""The core: request facts in, a principal or an error out. No framework, no SQL."""

from __future__ import annotations

import hmac
import threading
from typing import Protocol

from authgate.cache import KeyCache
from authgate.clock import Clock, now_utc
from authgate.credentials import extract_token
from authgate.errors import AuthgateError, InvalidCredentials, NotReady, OwnerDisabled
from authgate.facts import RequestFacts
from authgate.principal import Principal
from authgate.static_tokens import StaticTokens
from authgate.store.records import ApiKeyRecord
from authgate.tokens import digest, digest_bytes, is_well_formed
from authgate.usage import UsageBuffer

__all__ = ["Authenticator", "Decision", "KeyLookup"]

Decision = Principal | AuthgateError

_INVALID = InvalidCredentials()
_NOT_READY = NotReady()
# How long a lookup waits for the same digest's lookup already under way before it asks
# the store itself (a store that slow is failing; its own timeouts then answer).
_FOLLOW_SECONDS = 10.0


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
    ) -> None:
        self._store = store
        self._cache = cache
        self._static = static_tokens
        self._usage = usage
        self._prefix = token_prefix
        self._admin_digest = admin_digest
        self._clock = clock
        self.ready = False
        # digest -> done, for store reads under way (see ``_lookup``).
        self._in_flight: dict[str, threading.Event] = {}
        self._in_flight_lock = threading.Lock()

    def set_admin_digest(self, admin_digest: str) -> None:
        self._admin_digest = admin_digest

    def authenticate(self, facts: RequestFacts, *, allow_io: bool = True) -> Decision | None:
        """The decision for ``facts``; ``None`` only when ``allow_io`` is False and the
        answer needs the store (async adapters then call again from a worker thread)."""
        if not self.ready:
            return _NOT_READY
        token = extract_token(facts)
        if not isinstance(token, str):
            return token
        return self.authenticate_token(token, allow_io=allow_io)

    def authenticate_token(self, token: str, *, allow_io: bool = True) -> Decision | None:
        if not self.ready:
            return _NOT_READY
        principal = self.remembered(token.encode("utf-8"))
        if principal is not None:
            return principal
        # Looking up by digest means the secret itself is never compared byte by byte,
        # so the time taken says nothing about how close a guess was.
        token_digest = digest(token)
        if not is_well_formed(token, self._prefix) or self._cache.known_missing(token_digest):
            return _INVALID
        if not allow_io:
            return None
        return self._lookup(token_digest)

    def remembered(self, token: bytes) -> Principal | None:
        """The principal of a token that memory vouches for (a cached key, a static token,
        the admin key), else ``None``: the hot path of adapters that read raw headers, and
        the first step of ``authenticate_token``, which gives the full answer. One frame,
        the hash's and the cache's aside: on the hot path each call is a measurable share
        of a request."""
        if not self.ready:
            return None
        token_digest = digest_bytes(token)
        principal = self._cache.get(token_digest)
        if principal is not None:
            self._usage.record(principal.id)
            return principal
        static = self._static.lookup(token_digest)
        if static is not None:
            return static
        if self._admin_digest is not None and hmac.compare_digest(token_digest, self._admin_digest):
            return ADMIN_PRINCIPAL
        return None

    def _lookup(self, token_digest: str) -> Decision:
        """The store's answer, read once for all who ask at the same moment: when a busy
        key's cache entry ends, every request in flight with it misses at once, and
        without this each would take a worker thread to the store. The others wait for
        the first read and take its principal from memory; any other outcome (a refusal,
        a store error, a revocation in between) they read for themselves."""
        with self._in_flight_lock:
            first = self._in_flight.get(token_digest)
            if first is None:
                done = self._in_flight[token_digest] = threading.Event()
        if first is not None:
            first.wait(_FOLLOW_SECONDS)
            principal = self._cache.get(token_digest)
            if principal is not None:
                self._usage.record(principal.id)
                return principal
            return self._read_store(token_digest)
        try:
            return self._read_store(token_digest)
        finally:
            with self._in_flight_lock:
                del self._in_flight[token_digest]
            done.set()

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
            # Remembered as misses: revoked and expired keys never come back, and a
            # disabled user's, re-enabled, works again once the short miss memory ends.
            self._cache.put_missing(token_digest)
            if record.owner_id is not None and not record.owner_active:
                return OwnerDisabled(record.id, record.owner_id)
            return _INVALID
        principal = principal_for_key(record)
        self._cache.put(token_digest, principal, generation=generation)
        self._usage.record(principal.id)
        return principal
