"""Finding the one credential a request carries: ``X-API-Key`` or ``Authorization: Bearer``."""

from __future__ import annotations

from authgate.errors import AuthgateError, InvalidCredentials, MissingCredentials
from authgate.facts import RequestFacts

__all__ = ["MAX_CREDENTIAL_BYTES", "choose_token", "extract_token"]

MAX_CREDENTIAL_BYTES = 8192

_MISSING = MissingCredentials()


def extract_token(facts: RequestFacts) -> str | AuthgateError:
    """The token, or the error to answer with.

    Ambiguity is refused rather than resolved: repeated headers, or two different
    tokens in the two headers, could let a proxy and authgate disagree about who is
    calling.
    """
    return choose_token(facts.header_all("x-api-key"), facts.header_all("authorization"))


def choose_token(api_keys: list[str], authorizations: list[str]) -> str | AuthgateError:
    """``extract_token`` on the values of ``X-API-Key`` and ``Authorization`` alone, for
    adapters that read the headers without building the request's facts first."""
    if not api_keys and not authorizations:
        return _MISSING
    if len(api_keys) > 1 or len(authorizations) > 1:
        return InvalidCredentials("Send one credential header, once.")
    candidates = []
    if api_keys:
        candidates.append(api_keys[0].strip())
    if authorizations:
        scheme, _, value = authorizations[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            return InvalidCredentials("Unsupported Authorization scheme: use Bearer.")
        candidates.append(value.strip())
    token = candidates[0]
    if any(candidate != token for candidate in candidates[1:]):
        return InvalidCredentials("X-API-Key and Authorization carry different credentials.")
    if not token:
        return InvalidCredentials("The credential header is empty.")
    if len(token) > MAX_CREDENTIAL_BYTES or not token.isascii() or not token.isprintable():
        return InvalidCredentials()
    return token
