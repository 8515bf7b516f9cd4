"""The errors authgate raises, each carrying its HTTP meaning.

    AuthgateError                  500 internal_error (base: status, code, detail, headers)
    ├── MissingCredentials         401 no credentials on a protected route
    ├── InvalidCredentials         401 unknown, malformed, expired or revoked credentials
    │   ├── OwnerDisabled          the same 401, for a disabled user's key (audited)
    │   ├── InvalidJwt             401 jwt_*: an identity provider's JWT, refused, and why
    │   └── InvalidLogin           401 invalid_login: wrong email or password at login
    ├── InvalidAssertion           401 invalid_assertion: an upstream refuses a request
    │                              whose X-Authgate-Assertion is missing or does not verify
    ├── Forbidden                  403 authenticated, but scope / role / grant missing
    ├── NotFound                   404
    ├── Conflict                   409
    ├── InvalidRequest             422 invalid_request (also the base of bad configuration
    │                              at start-up); a request failing its schema is one too
    ├── RateLimited                429 with Retry-After and RateLimit-* headers
    ├── UpstreamError              502 bad_gateway: the gateway's upstream failed or is down
    ├── NotReady                   503 store not initialised or unreachable (fail closed)
    │   └── KeysUnavailable        503 keys_unavailable: no JWKS key could be fetched yet
    ├── UpstreamTimeout            504 gateway_timeout: the upstream did not answer in time
    └── S3Error                    the SigV4 family: rendered as S3 XML (see authgate.sigv4)

Each adapter renders these once: JSON in ``authgate.http``, S3 XML in ``authgate.sigv4``,
an exit code in the CLI. Nothing else maps exceptions to statuses.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthgateError",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "InvalidAssertion",
    "InvalidCredentials",
    "InvalidJwt",
    "InvalidLogin",
    "InvalidRequest",
    "KeysUnavailable",
    "MissingCredentials",
    "NotFound",
    "NotReady",
    "OwnerDisabled",
    "RateLimited",
    "UpstreamError",
    "UpstreamTimeout",
]

REALM = 'Bearer realm="authgate"'


class AuthgateError(Exception):
    status: int = 500
    code: str = "internal_error"
    default_detail: str = "Internal server error."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    def body(self) -> dict[str, str]:
        return {"detail": self.detail, "code": self.code}


class MissingCredentials(AuthgateError):
    status = 401
    code = "missing_credentials"
    default_detail = "Authentication required: send X-API-Key or Authorization: Bearer."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": REALM, **(headers or {})})


class InvalidCredentials(AuthgateError):
    """One opaque failure for every token problem the caller must not tell apart."""

    status = 401
    code = "invalid_token"
    default_detail = "Invalid, expired or revoked credentials."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        challenge = f'{REALM}, error="invalid_token"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge, **(headers or {})})


class OwnerDisabled(InvalidCredentials):
    """A disabled user's key: answered exactly as any invalid credential (the caller learns
    nothing), but it names the key so that the refusal can be audited."""

    def __init__(self, key_id: str, owner_id: str) -> None:
        super().__init__()
        self.key_id = key_id
        self.owner_id = owner_id


class InvalidJwt(InvalidCredentials):
    """A JWT from a configured identity provider, refused. Unlike authgate's own tokens,
    the code says which check failed (``jwt_expired``, ``jwt_wrong_audience``, ...): a
    provider's client needs it to fix its request, and checks on the claims run only
    after the signature verified, so a forger learns nothing from them."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class InvalidLogin(InvalidCredentials):
    """An email and password that do not log in: one answer for a wrong password, an
    unknown email and a disabled account. No token was sent, so the challenge names no
    token error; the code tells a login client what to ask its user again."""

    code = "invalid_login"
    default_detail = "Invalid email or password."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        AuthgateError.__init__(self, detail, headers={"WWW-Authenticate": REALM, **(headers or {})})


class InvalidAssertion(AuthgateError):
    """At an upstream: the request did not come through authgate, or its assertion is
    forged, expired, for another audience or signed by a key the JWKS does not hold.
    No challenge: the caller has nothing to send but a request through authgate."""

    status = 401
    code = "invalid_assertion"
    default_detail = "This service accepts requests only through authgate."


class Forbidden(AuthgateError):
    status = 403
    code = "forbidden"
    default_detail = "Not allowed."


class NotFound(AuthgateError):
    status = 404
    code = "not_found"
    default_detail = "Not found."


class Conflict(AuthgateError):
    status = 409
    code = "conflict"
    default_detail = "Conflict."


class InvalidRequest(AuthgateError):
    status = 422
    code = "invalid_request"
    default_detail = "Invalid request."


class ConfigurationError(InvalidRequest):
    """Refused configuration: raised at start-up with a message that says what to fix."""

    code = "configuration_error"


class RateLimited(AuthgateError):
    status = 429
    code = "rate_limited"
    default_detail = "Too many requests."


class NotReady(AuthgateError):
    status = 503
    code = "not_ready"
    default_detail = "authgate is not ready: the store is unreachable or not initialised."


class KeysUnavailable(NotReady):
    """An identity provider's key set was never fetched (unreachable, or not a key set):
    its tokens cannot be verified, so they are neither refused as invalid nor let in."""

    code = "keys_unavailable"
    default_detail = "The identity provider's keys could not be fetched; try again later."


class UpstreamError(AuthgateError):
    status = 502
    code = "bad_gateway"
    default_detail = "The upstream service could not be reached or failed."


class UpstreamTimeout(AuthgateError):
    status = 504
    code = "gateway_timeout"
    default_detail = "The upstream service did not answer in time."
