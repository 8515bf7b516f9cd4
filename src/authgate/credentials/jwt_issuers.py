"""``[[jwt_issuers]]``: the identity providers whose JWTs are credentials.

One table per issuer. Only the configuration lives here (pydantic alone, so the
settings import nothing of the ``jwt`` extra); the verifier is
``authgate.credentials.external_jwt``.

From claims to authgate's scopes and role, kept to two rules:

- **Scopes**: the claim ``scopes_claim`` (default ``scope``) is read as a space-separated
  string (``scope``, RFC 8693) or a list of strings (``scp``, ``roles``, a custom claim).
  Each value names an authgate scope, unless ``scope_map`` maps it to a list of them
  (``"api.read" = ["read"]``). Of the result, only application scopes of the catalogue
  (the ``scopes`` setting plus ``read`` and ``write``) are granted; anything else is
  dropped, never an error, since a provider's tokens carry scopes for other services too.
- **Role**: none, unless ``role_claim`` names a claim; then the first of its values (a
  string or a list) that ``role_map`` lists gives the role it maps to. Without a mapping
  no role is ever taken from a token.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PUBLIC_KEY_ALGORITHMS", "JwtIssuerSpec"]

# Signatures a published public key can verify. HS* (a shared secret) and "none" are not
# here, so no configuration can let a key set's public key serve as an HMAC secret.
PUBLIC_KEY_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class JwtIssuerSpec(BaseModel):
    """One ``[[jwt_issuers]]`` table of the config file (or an item of
    ``AUTHGATE_JWT_ISSUERS`` JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: Path | None = None
    audiences: tuple[str, ...] = Field(min_length=1)
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway: int = Field(default=60, ge=0, le=600)
    scopes_claim: str = "scope"
    scope_map: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    role_claim: str | None = None
    role_map: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> JwtIssuerSpec:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError(f"issuer {self.issuer!r}: give jwks_url or jwks_file, one of them")
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError(f"issuer {self.issuer!r}: jwks_url must be https:// (or http://)")
        refused = [alg for alg in self.algorithms if alg not in PUBLIC_KEY_ALGORITHMS]
        if refused or not self.algorithms:
            raise ValueError(
                f"issuer {self.issuer!r}: algorithms {refused or '[]'} refused; allowed: "
                + ", ".join(PUBLIC_KEY_ALGORITHMS)
            )
        if any(not audience for audience in self.audiences):
            raise ValueError(f"issuer {self.issuer!r}: an audience must not be empty")
        return self

    @property
    def jwks_location(self) -> str:
        return self.jwks_url if self.jwks_url is not None else str(self.jwks_file)
