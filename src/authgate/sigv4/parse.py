"""Strict parsing of SigV4 credentials: the Authorization header and presigned queries.

Anything not exactly of the documented shape is refused before a key is looked up or a
hash computed: a lenient parser is where two readings of one request begin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from authgate.sigv4.canonical import wire_bytes
from authgate.sigv4.errors import (
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    S3Error,
)
from authgate.sigv4.signing import ALGORITHM

__all__ = [
    "MAX_PRESIGNED_EXPIRES",
    "AuthorizationHeader",
    "Credential",
    "PresignedQuery",
    "parse_amz_date",
    "parse_authorization",
    "parse_credential",
    "parse_http_date",
    "parse_presigned",
]

MAX_PRESIGNED_EXPIRES = 604800  # seven days, S3's limit

_DATE = re.compile(r"[0-9]{8}")
# Key ids, regions and services are printable ASCII without '/' or ',': anything else
# could not be signed the same way by client and server (which encoding of the scope?).
_SCOPE_PART = re.compile(r"[!-+\--.0-~]+")
_TIMESTAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_NAME = r"[!#$%&'*+\-.^_`|~0-9a-z]+"
_HEADER_NAMES = re.compile(rf"{_NAME}(?:;{_NAME})*")
# The shape every SDK sends, parsed in one step; anything else takes the general path.
_USUAL_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([!-+\--.0-~]+)/([0-9]{8})/([!-+\--.0-~]+)/([!-+\--.0-~]+)"
    r"/aws4_request, ?"
    rf"SignedHeaders=({_NAME}(?:;{_NAME})*), ?Signature=([0-9a-f]{{64}})"
)
_EXPIRES = re.compile(r"-?[0-9]{1,12}")

_CREDENTIAL_SHAPE = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
_PRESIGNED_REQUIRED = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)


# The parse results below are made on every request: plain slotted dataclasses, because a
# frozen one pays an object.__setattr__ per field. Treat them as read-only.


@dataclass(slots=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(slots=True)
class AuthorizationHeader:
    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(slots=True)
class PresignedQuery:
    credential: Credential
    amz_date: str
    expires: int
    signed_headers: tuple[str, ...]
    signature: str
    security_token: str | None


def parse_credential(value: str, error: type[S3Error]) -> Credential:
    parts = value.split("/")
    if (
        len(parts) != 5
        or not _SCOPE_PART.fullmatch(parts[0])
        or not _DATE.fullmatch(parts[1])
        or not _SCOPE_PART.fullmatch(parts[2])
        or not _SCOPE_PART.fullmatch(parts[3])
    ):
        raise error(f"Error parsing the Credential parameter; {_CREDENTIAL_SHAPE}")
    if parts[4] != "aws4_request":
        raise error(
            f'Error parsing the Credential parameter; incorrect terminal "{parts[4]}". '
            'This endpoint uses "aws4_request".'
        )
    return Credential(parts[0], parts[1], parts[2], parts[3])


# Memoised: a client sends the same SignedHeaders list request after request.
@lru_cache(maxsize=256)
def _signed_headers(value: str, error: type[S3Error]) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not _HEADER_NAMES.fullmatch(value) or len(set(names)) != len(names):
        raise error("Error parsing the SignedHeaders parameter: lower-case names separated by ';'.")
    if "host" not in names:
        raise error("SignedHeaders must include the host header.")
    return names


def _signature(value: str, error: type[S3Error]) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise error("Error parsing the Signature parameter: 64 lower-case hex digits expected.")
    return value


def parse_authorization(value: str) -> AuthorizationHeader:
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

    The three components may come in any order, each exactly once; the space after each
    comma is optional (the S3 documentation's own example leaves it out).
    """
    error = AuthorizationHeaderMalformed
    usual = _USUAL_AUTHORIZATION.fullmatch(value)
    if usual is not None:
        akid, date, region, service, signed, signature = usual.groups()
        return AuthorizationHeader(
            credential=Credential(akid, date, region, service),
            signed_headers=_signed_headers(signed, error),
            signature=signature,
        )
    algorithm, sep, rest = value.partition(" ")
    if algorithm != ALGORITHM or not sep:
        raise error(f"The authorization header is malformed; the algorithm must be {ALGORITHM}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, field_value = item.strip().partition("=")
        if not eq or name not in ("Credential", "SignedHeaders", "Signature") or name in fields:
            raise error(
                "The authorization header is malformed; expected Credential, SignedHeaders "
                "and Signature, once each."
            )
        fields[name] = field_value
    if len(fields) != 3:
        raise error(
            "The authorization header is malformed; expected Credential, SignedHeaders "
            "and Signature, once each."
        )
    return AuthorizationHeader(
        credential=parse_credential(fields["Credential"], error),
        signed_headers=_signed_headers(fields["SignedHeaders"], error),
        signature=_signature(fields["Signature"], error),
    )


def parse_presigned(pairs: Sequence[tuple[str, str]]) -> PresignedQuery:
    """The X-Amz-* parameters of a presigned URL (pairs as sent, still percent-encoded)."""
    error = AuthorizationQueryParametersError
    wanted = (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    )
    found: dict[str, str] = {}
    for key, value in pairs:
        if key in wanted:
            if key in found:
                raise error(f"{key} appears more than once in the query string.")
            try:
                found[key] = unquote_to_bytes(wire_bytes(value)).decode("utf-8")
            except UnicodeDecodeError:
                raise error(f"{key} is not valid UTF-8 once decoded.") from None
    if any(name not in found for name in wanted[:-1]):
        raise error(_PRESIGNED_REQUIRED)
    if found["X-Amz-Algorithm"] != ALGORITHM:
        raise error(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    expires_text = found["X-Amz-Expires"]
    if not _EXPIRES.fullmatch(expires_text):
        raise error("X-Amz-Expires should be a number")
    expires = int(expires_text)
    if expires < 0:
        raise error("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise error("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    return PresignedQuery(
        credential=parse_credential(found["X-Amz-Credential"], error),
        amz_date=found["X-Amz-Date"],
        expires=expires,
        signed_headers=_signed_headers(found["X-Amz-SignedHeaders"], error),
        signature=_signature(found["X-Amz-Signature"], error),
        security_token=found.get("X-Amz-Security-Token"),
    )


def parse_amz_date(value: str) -> datetime | None:
    """``20150830T123600Z`` -> aware UTC datetime; None if not exactly that shape."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    # fromisoformat reads the basic format since 3.11 and costs a tenth of strptime,
    # which would otherwise outweigh the rest of a cached verification; the regex above
    # keeps it from accepting any other ISO 8601 spelling.
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def parse_http_date(value: str) -> datetime | None:
    """A ``Date`` header (RFC 7231), for clients that sign Date instead of X-Amz-Date."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:  # "-0000": still GMT, as every HTTP date is
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
