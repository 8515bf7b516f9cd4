"""JWTs from an identity provider as credentials: the ``[[jwt_issuers]]`` verifier.

``Authorization: Bearer <JWT>`` is told from an authgate token by its shape: three
base64url segments, the first a JSON object (``eyJ``), where an authgate token is
``ag_`` and one segment. A JWT is taken from ``Authorization`` only: one in
``X-API-Key``, or beside an ``X-API-Key``, is left to the generic credential checks,
which refuse it.

The order of the checks is the order of trust:

1. the header, unverified: an ``alg`` the issuer allows (never ``none`` nor ``HS*``: see
   ``jwt_issuers.PUBLIC_KEY_ALGORITHMS``), no ``crit``, no key carried or pointed at by
   the token (``jwk``, ``jku``, ``x5u``, ``x5c``), no nested token (``cty``), no
   duplicate member in the header or the claims;
2. the issuer, by the exact ``iss`` string; the key, by ``kid`` and ``alg`` in that
   issuer's key set (``authgate.jwks``; an unknown ``kid`` gets one rate-limited refresh,
   yielded as a ``Need``);
3. the signature (joserfc);
4. only then the claims: ``exp`` (required), ``nbf``, ``iat``, ``aud`` and ``sub``
   (required), within the issuer's leeway.

Each refusal is a 401 (``InvalidJwt``) with a code naming the check, and counts toward
the failure limit like any bad credential; a key set never fetched is a 503
(``KeysUnavailable``). The principal: ``kind="jwt"``, ``issuer`` and ``subject`` as the
token says, ``id`` ``jwt:<iss>#<sub>`` with both percent-encoded outside a safe ASCII
set, so it is header-safe and two subjects never share an id.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from joserfc import jws
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import Key
from joserfc.jwt import JWTClaimsRegistry
from joserfc.util import urlsafe_b64decode

from authgate.clock import Clock
from authgate.credentials.jwt_issuers import JwtIssuerSpec
from authgate.credentials.verifiers import Decision, Request
from authgate.errors import ConfigurationError, InvalidJwt, KeysUnavailable
from authgate.jwks import JwksSource
from authgate.pipeline import Flow, Need, Step
from authgate.principal import Principal
from authgate.settings import MANAGEMENT_SCOPES

if TYPE_CHECKING:
    from authgate.runtime import Runtime

__all__ = ["ExternalJwts", "JwtIssuer", "looks_like_jwt", "verifier_for"]

_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Header members that carry or point at a key: a token never chooses its own key.
_KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")
_TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
_ID_SAFE = "@.-_~:/+"
# Verified tokens remembered, by digest: beyond this many, the memory starts afresh.
_REMEMBERED = 10_000


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments, the first a JSON object: a JWS in compact form."""
    return token.startswith("eyJ") and _SHAPE.fullmatch(token) is not None


class _Duplicate(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two "alg" (or "exp") members could be read two ways by two parsers: refused.
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Duplicate("duplicate member")
    return found


def _json_segment(segment: str) -> dict[str, Any]:
    value = json.loads(urlsafe_b64decode(segment.encode()), object_pairs_hook=_refuse_duplicates)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _refuse(code: str, detail: str) -> InvalidJwt:
    return InvalidJwt(code, detail)


_MALFORMED = "The bearer token is not a well-formed JWT."


class JwtIssuer:
    """One configured issuer: its key set, its claim checks and its claims → principal."""

    def __init__(
        self,
        spec: JwtIssuerSpec,
        source: JwksSource,
        *,
        grantable: Iterable[str],
        roles: Iterable[str],
        clock: Clock,
    ) -> None:
        self.spec = spec
        self.source = source
        self.algorithms = frozenset(spec.algorithms)
        self._grantable = frozenset(grantable)
        known_roles = frozenset(roles)
        for value, scopes in spec.scope_map.items():
            unknown = [scope for scope in scopes if scope not in self._grantable]
            if unknown:
                raise ConfigurationError(
                    f"jwt_issuers {spec.issuer!r}: scope_map.{value} names scopes "
                    f"{unknown} not in the catalogue (the scopes setting, read, write)"
                )
        for value, role in spec.role_map.items():
            if role not in known_roles:
                raise ConfigurationError(
                    f"jwt_issuers {spec.issuer!r}: role_map.{value} names the unknown role "
                    f"{role!r}; roles: {', '.join(sorted(known_roles))}"
                )
        self._clock = clock
        # digest -> (principal, the key set it was verified with): the same token needs
        # no second signature check while that key set stands and the token lasts.
        self._verified: dict[str, tuple[Principal, tuple[Key, ...]]] = {}
        self._claims = JWTClaimsRegistry(
            now=self._now,
            leeway=spec.leeway,
            iss={"essential": True, "value": spec.issuer},
            aud={"essential": True, "values": list(spec.audiences)},
            exp={"essential": True},
            sub={"essential": True},
        )

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def remembered(self, token_digest: str | None) -> Principal | None:
        """The principal of a token verified before with the key set still in use and
        within its lifetime, while the token has not expired (``exp`` and the leeway,
        checked again here)."""
        found = self._verified.get(token_digest) if token_digest is not None else None
        if found is None:
            return None
        principal, keys = found
        expires = principal.expires_at
        # A key set past its lifetime must be fetched again before anything rests on it:
        # else a token replayed alone would outlive its key's removal from the JWKS.
        if keys is not self.source.keys or expires is None or self.source.needs_fetch():
            return None
        if expires.timestamp() <= self._now() - self.spec.leeway:
            return None
        return principal

    def remember(self, token_digest: str | None, decision: Decision, keys: tuple[Key, ...]) -> None:
        if token_digest is None or not isinstance(decision, Principal):
            return
        if len(self._verified) >= _REMEMBERED:
            self._verified.clear()
        self._verified[token_digest] = (decision, keys)

    def check(self, token: jws.CompactSignature, key: Key, claims: dict[str, Any]) -> Decision:
        """The signature, then the claims: the principal, or why not."""
        alg = str(token.headers()["alg"])
        try:
            verified = jws.validate_compact(token, key, algorithms=[alg])
        except JoseError:
            verified = False
        if not verified:
            return _refuse("jwt_bad_signature", "The JWT's signature does not verify.")
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            return _refuse("jwt_expired", "The JWT has expired.")
        except MissingClaimError as exc:
            return _refuse("jwt_missing_claim", f"The JWT lacks the claim {exc.claim!r}.")
        except ClaimError as exc:
            if exc.claim in ("nbf", "iat"):
                return _refuse("jwt_not_yet_valid", "The JWT is not valid yet.")
            if exc.claim == "aud":
                return _refuse("jwt_wrong_audience", "The JWT is meant for another audience.")
            return _refuse("jwt_invalid_claim", f"The JWT's claim {exc.claim!r} is refused.")
        try:
            return self.principal(claims)
        except (OverflowError, OSError, ValueError):
            # An exp past the calendar's end: no moment it could expire at.
            return _refuse("jwt_invalid_claim", "The JWT's claim 'exp' is refused.")

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = str(claims["sub"])
        exp = claims["exp"]
        return Principal(
            id=f"jwt:{quote(self.spec.issuer, safe=_ID_SAFE)}#{quote(subject, safe=_ID_SAFE)}",
            name=subject,
            kind="jwt",
            scopes=self.scopes_of(claims),
            role=self.role_of(claims),
            expires_at=datetime.fromtimestamp(exp, UTC),
            issuer=self.spec.issuer,
            subject=subject,
        )

    def scopes_of(self, claims: Mapping[str, Any]) -> frozenset[str]:
        granted: set[str] = set()
        for value in _values(claims.get(self.spec.scopes_claim), split=True):
            granted.update(self.spec.scope_map.get(value, (value,)))
        return frozenset(granted & self._grantable)

    def role_of(self, claims: Mapping[str, Any]) -> str | None:
        if self.spec.role_claim is None:
            return None
        for value in _values(claims.get(self.spec.role_claim), split=False):
            role = self.spec.role_map.get(value)
            if role is not None:
                return role
        return None


def _values(claim: object, *, split: bool) -> list[str]:
    if isinstance(claim, str):
        return claim.split() if split else [claim]
    if isinstance(claim, list):
        return [item for item in claim if isinstance(item, str)]
    return []


class ExternalJwts:
    """The verifier: claims a bearer JWT, verifies it against its issuer's keys."""

    def __init__(self, issuers: Iterable[JwtIssuer]) -> None:
        self.issuers = {issuer.spec.issuer: issuer for issuer in issuers}
        # With several issuers, the token's own iss picks the memory to look in.
        self._single = next(iter(self.issuers.values())) if len(self.issuers) == 1 else None

    def claims(self, request: Request) -> bool:
        token = request.credential()
        if not isinstance(token, str) or not looks_like_jwt(token):
            return False
        facts = request.facts()
        return not facts.header_all("x-api-key") and len(facts.header_all("authorization")) == 1

    def verify(self, request: Request) -> Step[Decision]:
        token = request.credential()
        assert isinstance(token, str)
        if self._single is not None:
            known = self._single.remembered(request.digest())
            if known is not None:
                return known
        header_segment, payload_segment, _ = token.split(".")
        try:
            header = _json_segment(header_segment)
            claims = _json_segment(payload_segment)
        except _Duplicate:
            return _refuse("jwt_malformed", "The JWT repeats a member of its header or claims.")
        except (ValueError, TypeError):
            return _refuse("jwt_malformed", _MALFORMED)
        refusal = _header_refusal(header)
        if refusal is not None:
            return refusal
        try:
            compact = jws.extract_compact(token.encode())
        except (ValueError, TypeError, JoseError):
            return _refuse("jwt_malformed", _MALFORMED)
        iss = claims.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            return _refuse("jwt_unknown_issuer", "The JWT's issuer is not configured.")
        known = issuer.remembered(request.digest())
        if known is not None:
            return known
        alg = header["alg"]
        if alg not in issuer.algorithms:
            return _refuse("jwt_algorithm_refused", f"The algorithm {alg!r} is not allowed.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return _refuse("jwt_malformed", _MALFORMED)
        source = issuer.source
        if not source.needs_fetch():
            keys = source.keys
            key = source.find(kid, alg)
            if key is not None:  # memory answers: no flow
                decision = issuer.check(compact, key, claims)
                issuer.remember(request.digest(), decision, keys)
                return decision
        return self._with_keys(issuer, compact, kid, alg, claims)

    def _with_keys(
        self,
        issuer: JwtIssuer,
        compact: jws.CompactSignature,
        kid: str | None,
        alg: str,
        claims: dict[str, Any],
    ) -> Flow[Decision]:
        source = issuer.source
        if source.needs_fetch():
            yield Need(source.refresh)
        key = source.find(kid, alg)
        if key is None and source.may_refresh_now():
            yield Need(source.refresh_for_unknown_kid)
            key = source.find(kid, alg)
        if key is None:
            if not source.keys:
                return KeysUnavailable()
            return _refuse("jwt_unknown_key", "The JWT's key (kid) is not in the issuer's keys.")
        return issuer.check(compact, key, claims)


def _header_refusal(header: Mapping[str, Any]) -> InvalidJwt | None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        return _refuse("jwt_algorithm_refused", "Unsigned JWTs (alg none) are refused.")
    if "crit" in header or "b64" in header:
        return _refuse("jwt_header_refused", "JWT header extensions (crit, b64) are refused.")
    if any(name in header for name in _KEY_HEADERS):
        return _refuse("jwt_header_refused", "A JWT may not name its own key (jwk, jku, x5u, x5c).")
    if "cty" in header or "enc" in header:
        return _refuse("jwt_header_refused", "Nested or encrypted JWTs are refused.")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPES):
        return _refuse("jwt_header_refused", "The JWT's type (typ) is refused.")
    return None


# One verifier per runtime, so every gate of a process (middleware, gateway, verify)
# shares one key set per issuer, fetched and refreshed once.
_BUILT: weakref.WeakKeyDictionary[Runtime, ExternalJwts] = weakref.WeakKeyDictionary()


def verifier_for(runtime: Runtime) -> ExternalJwts:
    built = _BUILT.get(runtime)
    if built is None:
        built = _BUILT[runtime] = build_issuers(runtime)
    return built


def build_issuers(runtime: Runtime) -> ExternalJwts:
    """The verifier for ``runtime``'s ``jwt_issuers``, each with its key set."""
    settings = runtime.settings
    catalogue = runtime.roles
    # Management scopes are for authgate's own routes, which never take these tokens.
    grantable = [scope for scope in catalogue.scopes if scope not in MANAGEMENT_SCOPES]
    issuers = []
    for spec in settings.jwt_issuers:
        low, high = settings.jwks_cache_min_seconds, settings.jwks_cache_max_seconds
        if low > high:
            raise ConfigurationError(
                "jwks_cache_min_seconds must not exceed jwks_cache_max_seconds"
            )
        source = JwksSource(
            spec.jwks_location,
            timeout=settings.jwks_timeout,
            default_ttl=min(max(300.0, low), high),
            min_ttl=low,
            max_ttl=high,
            unknown_kid_interval=settings.jwks_unknown_kid_seconds,
        )
        issuers.append(
            JwtIssuer(spec, source, grantable=grantable, roles=catalogue.roles, clock=runtime.clock)
        )
    return ExternalJwts(issuers)
