"""Signing assertions: one short-lived JWT per caller, reused for a fraction of its life.

A signature (ECDSA or Ed25519) costs far more than the rest of a forwarded request's
header work, so the signed token is kept per principal (and audience: one issuer has
one) and handed out again until a quarter of its lifetime has passed; the upstream then
still has at least three quarters of it to verify it in. The cache is bounded: when
full, the oldest entry goes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

from joserfc import jwt

from authgate.assertion.keys import AssertionKeys
from authgate.errors import ConfigurationError
from authgate.principal import Principal
from authgate.settings import Settings

__all__ = ["AssertionIssuer", "issuer_from_settings", "keys_from_settings", "origin_of"]

# Of the lifetime, the part for which one signed token is reused.
REUSE_FRACTION = 0.25
CACHE_ENTRIES = 10_000

_Identity = tuple[str, str, str, str | None, str | None, tuple[str, ...]]


class AssertionIssuer:
    """Makes the ``X-Authgate-Assertion`` value for a principal (see ``identity_headers``)."""

    def __init__(
        self,
        keys: AssertionKeys,
        *,
        issuer: str,
        audience: str,
        lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
        max_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds
        self._reuse_seconds = lifetime_seconds * REUSE_FRACTION
        self._clock = clock
        self._max_entries = max_entries
        self._cache: OrderedDict[_Identity, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def assertion_for(self, principal: Principal) -> str:
        identity = _identity_of(principal)
        now = self._clock()
        cached = self._cache.get(identity)
        if cached is not None and now - cached[0] < self._reuse_seconds:
            return cached[1]
        token = self._sign(principal, now)
        with self._lock:
            self._cache[identity] = (now, token)
            self._cache.move_to_end(identity)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return token

    def _sign(self, principal: Principal, now: float) -> str:
        key = self.keys.current()
        issued = int(now)
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.owner_id or principal.id,
            "kind": principal.kind,
            "key_id": principal.id,
            "scopes": sorted(principal.scopes),
            "role": principal.role,
            "iat": issued,
            "exp": issued + self.lifetime_seconds,
            "jti": secrets.token_urlsafe(16),
        }
        if principal.owner_email is not None:
            claims["email"] = principal.owner_email
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])


def _identity_of(principal: Principal) -> _Identity:
    # Everything the claims say, so that a changed role or scope set is a new token.
    return (
        principal.id,
        principal.kind,
        principal.owner_id or "",
        principal.role,
        principal.owner_email,
        tuple(sorted(principal.scopes)),
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, as a browser would name its origin."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(f"{url!r} has no scheme and host to take an origin from")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host.lower()}{suffix}"


def issuer_from_settings(settings: Settings) -> AssertionIssuer | None:
    """The issuer the settings ask for, or ``None`` with ``assertion`` off."""
    if not settings.assertion:
        return None
    if settings.assertion_audience:
        audience = settings.assertion_audience
    elif settings.upstream_url:
        audience = origin_of(settings.upstream_url)
    else:
        raise ConfigurationError(
            "assertion = true needs an audience: set assertion_audience (the upstream's "
            "origin, e.g. https://app.internal) or upstream_url"
        )
    keys = keys_from_settings(settings)
    keys.current()  # a damaged or loose key file is refused at start-up, not per request
    return AssertionIssuer(
        keys,
        issuer=settings.assertion_issuer,
        audience=audience,
        lifetime_seconds=settings.assertion_lifetime_seconds,
    )


def keys_from_settings(settings: Settings) -> AssertionKeys:
    """The signing key file the settings name, with its overlap."""
    # A retired key must outlive every assertion it signed, and the second a running
    # process takes to notice the rotation.
    overlap = max(settings.assertion_key_overlap_seconds, settings.assertion_lifetime_seconds + 2)
    return AssertionKeys(
        settings.resolved_assertion_key_file,
        settings.assertion_algorithm,
        overlap_seconds=overlap,
    )
