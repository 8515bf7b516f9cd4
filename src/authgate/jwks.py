"""A JSON Web Key Set from an identity provider: fetched, cached, refreshed, kept.

``JwksSource`` holds the public keys of one issuer, read from an ``https://`` (or
``http://``) URL or from a file. Its policy, for each way the keys can change or fail:

- **Every fetch has a deadline** (``timeout``: connect, each read and the whole body
  together) and a size bound; redirects are not followed.
- **Cached by the response's HTTP cache headers**: ``Cache-Control: max-age`` (less
  ``Age``), else ``Expires`` against ``Date``, else ``default_ttl``; ``no-cache`` and
  ``no-store`` count as zero. The result is held within ``[min_ttl, max_ttl]``, so a
  provider cannot make authgate fetch on every request, nor keep a key for ever.
- **Refreshed in the background before expiry**: once three quarters of the lifetime
  has passed, the first look-up starts one refresh in a thread and is answered from the
  keys at hand. Past expiry (nothing looked for a while), ``needs_fetch()`` says so and
  the caller fetches before it decides (the gate yields that as a ``Need``).
- **An unknown ``kid``** gets one refresh, at most one per ``unknown_kid_interval``
  seconds per source, so a stream of made-up ``kid`` values costs the provider nothing;
  a ``kid`` still unknown after it is refused.
- **An outage keeps the known keys**: a failed fetch (unreachable, not 200, not a key
  set, no usable key) is logged once when it begins and once when it ends, the keys
  already known stay in use, and the next try waits ``min_ttl``. Without any known key
  there is nothing to verify with, and ``key()`` raises ``KeysUnavailable`` (a 503).
- **A file** is checked for a change (inode, size, modification time) every
  ``file_poll`` seconds, in the background like a refresh, and re-read when it changed;
  a bad new file keeps the previous keys.

Only public signing keys are kept: ``oct`` (symmetric) keys and keys marked
``"use": "enc"`` are dropped, so nothing published in a key set can become an HMAC
secret. The sync API (``key``, ``refresh``) is all an application needs; the gate uses
the memory-only ``find`` / ``needs_fetch`` / ``may_refresh_now`` and runs ``refresh`` as
a ``Need``.

Imports: httpx and joserfc only (the ``jwt`` extra), so an upstream app verifying
tokens needs nothing else of authgate's dependencies.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from authgate.errors import KeysUnavailable

__all__ = ["JwksSource", "cache_lifetime"]

log = logging.getLogger("authgate.jwks")

# Far more than any provider publishes (a few keys of a few hundred bytes each).
MAX_JWKS_BYTES = 512 * 1024
# Which key types can verify which "alg" values: a key only ever serves its own family.
_KEY_TYPES: dict[str, type[Key]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
_ALG_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
# The part of the lifetime after which a look-up starts a background refresh.
_REFRESH_AHEAD = 0.75


def family_of(alg: str) -> str | None:
    """The key type an ``alg`` needs (``RS256`` → ``RSA``), ``None`` for ``none``, ``HS*``
    and anything else no public key can verify."""
    if alg in ("EdDSA", "Ed25519"):
        return "OKP"
    return _ALG_FAMILY.get(alg[:2]) if len(alg) == 5 and alg[2:].isdigit() else None


def cache_lifetime(
    headers: Mapping[str, str], *, now: float, default: float, low: float, high: float
) -> float:
    """Seconds a response may be cached for, from its headers, within ``[low, high]``.

    Hand-written: the few lines of RFC 9111 a key set needs (``max-age``, ``Age``,
    ``Expires`` against ``Date``) do not justify an HTTP cache library.
    """
    lifetime: float | None = None
    directives = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        lifetime = 0.0
    elif directives.get("max-age", "").isdigit():
        age = headers.get("age", "0").strip()
        lifetime = int(directives["max-age"]) - (int(age) if age.isdigit() else 0)
    elif "expires" in headers:
        expires = _http_date(headers["expires"])
        # An unreadable Expires means "already expired" (RFC 9111, 5.3).
        date = _http_date(headers.get("date", "")) or now
        lifetime = 0.0 if expires is None else expires - date
    if lifetime is None:
        lifetime = default
    return min(max(lifetime, low), high)


def _http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class _FileStamp:
    inode: int
    size: int
    mtime_ns: int


class _BadKeySet(Exception):
    """A fetch that answered, but not with usable keys."""


def parse_key_set(data: bytes) -> tuple[Key, ...]:
    """The public signing keys of a JWKS document; a key joserfc cannot import, a
    symmetric key and an encryption key are left out."""
    try:
        document = json.loads(data)
    except ValueError:
        raise _BadKeySet("not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _BadKeySet('no "keys" list')
    keys = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        key_class = _KEY_TYPES.get(str(entry.get("kty")))
        if key_class is None:
            continue
        public = {name: value for name, value in entry.items() if name not in ("d", "p", "q")}
        try:
            keys.append(key_class.import_key(public))
        except Exception:  # joserfc raises many kinds for a malformed key: skip it
            log.debug("JWKS key %r skipped: it does not import", entry.get("kid"))
    if not keys:
        raise _BadKeySet("no usable public signing key")
    return tuple(keys)


class JwksSource:
    """The keys at ``location`` (a URL, or a file path): see the module's docstring."""

    def __init__(
        self,
        location: str | Path,
        *,
        timeout: float = 5.0,
        default_ttl: float = 300.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        unknown_kid_interval: float = 60.0,
        file_poll: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_ttl <= default_ttl <= max_ttl:
            raise ValueError("JWKS cache bounds must hold 0 < min_ttl <= default_ttl <= max_ttl")
        if timeout <= 0:
            raise ValueError("a JWKS fetch needs a positive timeout")
        text = str(location)
        self.is_url = text.startswith(("https://", "http://"))
        self.location = text
        self._path = None if self.is_url else Path(text)
        self.timeout = timeout
        self.default_ttl = default_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.unknown_kid_interval = unknown_kid_interval
        self.file_poll = file_poll
        self._transport = transport
        self._clock = clock
        self._keys: tuple[Key, ...] = ()
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._retry_at = 0.0  # after a failure: no fetch before this
        self._last_unknown_kid_refresh = -float("inf")
        self._stamp: _FileStamp | None = None
        self._failing_since: float | None = None
        self._generation = 0  # counts completed fetches, for single-flight waiting
        self._fetching = threading.Lock()

    def __repr__(self) -> str:
        return f"JwksSource({self.location!r})"

    # -- memory only: what the gate asks on every request ---------------------------------
    @property
    def keys(self) -> tuple[Key, ...]:
        return self._keys

    def find(self, kid: str | None, alg: str) -> Key | None:
        """The one known key for ``kid`` that can verify ``alg``, or ``None``; starts a
        background refresh when the keys are due for one. Without a ``kid`` only a lone
        key of the right type is taken: a token must not choose among several."""
        self._refresh_ahead()
        family = family_of(alg)
        if family is None:
            return None
        found = [
            key
            for key in self._keys
            if key.key_type == family and (kid is None or key.kid == kid) and key.alg in (None, alg)
        ]
        return found[0] if len(found) == 1 else None

    def needs_fetch(self) -> bool:
        """Whether the keys must be fetched before a decision: none yet, or past their
        lifetime, and no failure asks to wait."""
        now = self._clock()
        return now >= self._expires_at and now >= self._retry_at

    def may_refresh_now(self) -> bool:
        """Whether an unknown ``kid`` may refresh the keys now (one per interval)."""
        return self._clock() - self._last_unknown_kid_refresh >= self.unknown_kid_interval

    # -- I/O: run where blocking is fine (a worker thread, a sync app) ---------------------
    def refresh(self) -> bool:
        """Fetch the keys now, or wait for a fetch already under way; ``True`` when keys
        are known afterwards. A failure keeps the known keys. Bounded by the timeout."""
        seen = self._generation
        if not self._fetching.acquire(timeout=self.timeout * 2):
            return bool(self._keys)
        try:
            if self._generation == seen:
                self._fetch()
        finally:
            self._fetching.release()
        return bool(self._keys)

    def refresh_for_unknown_kid(self) -> bool:
        """One refresh for a ``kid`` the keys do not hold, unless one happened within
        ``unknown_kid_interval``; ``True`` when it refreshed."""
        if not self.may_refresh_now():
            return False
        self._last_unknown_kid_refresh = self._clock()
        self.refresh()
        return True

    def key(self, kid: str | None, alg: str) -> Key | None:
        """The key for ``kid`` and ``alg``, fetching as needed (the sync API): ``None``
        for a ``kid`` still unknown after one rate-limited refresh; ``KeysUnavailable``
        when no key could ever be fetched."""
        if self.needs_fetch():
            self.refresh()
        if not self._keys:
            raise KeysUnavailable()
        found = self.find(kid, alg)
        if found is None and self.refresh_for_unknown_kid():
            found = self.find(kid, alg)
        return found

    # -- inside ------------------------------------------------------------------------------
    def _refresh_ahead(self) -> None:
        now = self._clock()
        if now < self._refresh_at or now < self._retry_at or not self._keys:
            return
        if not self._fetching.acquire(blocking=False):
            return  # one is under way
        # Not again from the next look-up while this one runs.
        self._refresh_at = now + self.min_ttl
        thread = threading.Thread(target=self._fetch_and_release, name="authgate-jwks")
        thread.daemon = True
        thread.start()

    def _fetch_and_release(self) -> None:
        try:
            self._fetch()
        finally:
            self._fetching.release()

    def _fetch(self) -> None:
        """One fetch (the caller holds ``_fetching``); never raises for an outage."""
        started = self._clock()
        keys: tuple[Key, ...] | None
        try:
            if self.is_url:
                keys, lifetime = self._from_url()
            else:
                keys, lifetime = self._from_file()
        except (httpx.HTTPError, OSError, _BadKeySet, _Failed) as exc:
            self._failed(started, exc)
        else:
            if keys is not None:
                self._keys = keys
            self._refresh_at = started + lifetime * _REFRESH_AHEAD
            self._expires_at = started + lifetime
            self._retry_at = 0.0
            if self._failing_since is not None:
                log.info("JWKS %s answers again", self.location)
                self._failing_since = None
        finally:
            self._generation += 1

    def _failed(self, started: float, exc: Exception) -> None:
        self._retry_at = started + (self.min_ttl if self.is_url else self.file_poll)
        if self._failing_since is None:
            self._failing_since = started
            log.warning(
                "JWKS %s unavailable (%s: %s); keeping the %d known keys",
                self.location,
                type(exc).__name__,
                exc,
                len(self._keys),
            )

    def _from_url(self) -> tuple[tuple[Key, ...], float]:
        deadline = time.monotonic() + self.timeout
        with httpx.Client(
            timeout=self.timeout, follow_redirects=False, transport=self._transport
        ) as client:
            with client.stream("GET", self.location, headers={"Accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise _Failed(f"HTTP {r.status_code}")
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _Failed("the key set is too large")
                    if time.monotonic() > deadline:
                        raise _Failed(f"no complete answer within {self.timeout}s")
                headers = r.headers
        lifetime = cache_lifetime(
            headers,
            now=time.time(),
            default=self.default_ttl,
            low=self.min_ttl,
            high=self.max_ttl,
        )
        return parse_key_set(bytes(body)), lifetime

    def _from_file(self) -> tuple[tuple[Key, ...] | None, float]:
        assert self._path is not None
        info = os.stat(self._path)
        stamp = _FileStamp(info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp == self._stamp and self._keys:
            return None, self.file_poll
        if info.st_size > MAX_JWKS_BYTES:
            raise _Failed("the key set is too large")
        keys = parse_key_set(self._path.read_bytes())
        if self._stamp is not None:
            log.info("JWKS file %s reloaded: %d keys", self.location, len(keys))
        self._stamp = stamp
        return keys, self.file_poll


class _Failed(Exception):
    """A fetch that did not answer usefully (status, size, deadline)."""
