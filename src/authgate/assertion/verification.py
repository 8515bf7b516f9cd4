"""Checking an assertion at the upstream: signature, algorithm, kid, and every claim.

The JOSE library does the work (``joserfc``) and the key set comes from
``authgate.jwks`` (cached, refreshed, kept through an outage): the header is read once,
``alg`` must be one authgate signs with (never ``none``, never an HMAC one a public key could be
abused for), the ``kid`` must be in authgate's JWKS, and the claims are checked with
joserfc's claim registry: ``iss`` and ``aud`` exact, ``exp``, ``iat``, ``sub`` and
``jti`` present, ``exp`` not past. Every failure is the same ``InvalidAssertion``; the
reason is in its detail for the upstream's own log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from authgate.errors import InvalidAssertion
from authgate.jwks import JwksSource

__all__ = ["Assertion", "AssertionVerifier", "verify"]

# What authgate signs with: ES256, and Ed25519 (EdDSA under RFC 9864's name).
ALGORITHMS = ("ES256", "Ed25519")
# A rotated key is met as an unknown kid: one fetch of the key set per this many seconds
# picks it up soon, and a stream of made-up kids still costs authgate almost nothing.
UNKNOWN_KID_INTERVAL = 5.0
_MAX_TOKEN = 8192


@dataclass(frozen=True, slots=True)
class Assertion:
    """Who authgate says the caller is."""

    subject: str
    kind: str
    key_id: str | None
    scopes: frozenset[str]
    role: str | None
    email: str | None
    issued_at: int
    expires_at: int
    jti: str
    claims: Mapping[str, Any] = field(repr=False)


class AssertionVerifier:
    """Verifies assertions for one audience against one JWKS URL (keys cached)."""

    def __init__(
        self,
        *,
        jwks_url: str,
        audience: str,
        issuer: str = "authgate",
        algorithms: Iterable[str] = ALGORITHMS,
        leeway: int = 0,
        now: Callable[[], int] | None = None,
    ) -> None:
        self.keys = JwksSource(jwks_url, unknown_kid_interval=UNKNOWN_KID_INTERVAL)
        self.audience = audience
        self.issuer = issuer
        self.algorithms = [alg for alg in algorithms if alg in ALGORITHMS]
        if not self.algorithms:
            raise ValueError(f"algorithms must be among {', '.join(ALGORITHMS)}")
        self.leeway = leeway
        self._now = now or (lambda: int(time.time()))

    def verify(self, token: str) -> Assertion:
        if not token or len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise InvalidAssertion("The assertion is missing or is not a compact JWT.")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeEncodeError):
            raise InvalidAssertion("The assertion is not a readable JWT.") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise InvalidAssertion(f"The assertion's algorithm {alg!r} is not accepted.")
        if not isinstance(kid, str) or not kid:
            raise InvalidAssertion("The assertion names no key (kid).")
        # KeysUnavailable (503) when authgate's key set was never fetched: fail closed.
        key = self.keys.key(kid, alg)
        if key is None:
            raise InvalidAssertion("The assertion is signed by a key authgate does not publish.")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
            registry = jwt.JWTClaimsRegistry(
                now=self._now,
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidAssertion(f"The assertion does not verify: {exc}") from None
        return _assertion(decoded.claims)


def _assertion(claims: Mapping[str, Any]) -> Assertion:
    scopes = claims.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidAssertion("The assertion's scopes are not a list of names.")
    return Assertion(
        subject=str(claims["sub"]),
        kind=str(claims.get("kind", "")),
        key_id=_optional(claims.get("key_id")),
        scopes=frozenset(scopes),
        role=_optional(claims.get("role")),
        email=_optional(claims.get("email")),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        jti=str(claims["jti"]),
        claims=dict(claims),
    )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


_VERIFIERS: dict[tuple[str, str, str], AssertionVerifier] = {}


def verify(token: str, *, jwks_url: str, audience: str, issuer: str = "authgate") -> Assertion:
    """The identity in ``token`` if authgate signed it for ``audience``; else
    ``InvalidAssertion``. The JWKS is fetched once per URL and cached."""
    verifier = _VERIFIERS.get((jwks_url, audience, issuer))
    if verifier is None:
        verifier = AssertionVerifier(jwks_url=jwks_url, audience=audience, issuer=issuer)
        _VERIFIERS[(jwks_url, audience, issuer)] = verifier
    return verifier.verify(token)
