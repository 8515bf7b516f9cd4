"""Server-side SigV2 verification for S3: request facts in, a verified access key out.

Header form (``Authorization: AWS <AccessKeyId>:<Signature>``, with a ``Date`` or
``x-amz-date`` within the skew) and query form (``?AWSAccessKeyId=…&Signature=…&
Expires=…``, the presigned URLs boto3 and the AWS CLI make by default). The body is never
signed in SigV2 (``Content-MD5`` is the store's to check), so a result has nothing left
to check of it.

Read once and strictly: a request that carries two mechanisms (both forms, SigV4 beside
SigV2, two ``Authorization`` headers) or a query parameter twice is refused, since the
store could act on the one this reading did not verify.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote_to_bytes

from authgate.clock import now_utc
from authgate.errors import ConfigurationError
from authgate.facts import RequestFacts
from authgate.sigv2.canonical import (
    SUB_RESOURCES,
    canonical_amz_headers,
    canonical_resource,
    string_to_sign_v2,
)
from authgate.sigv2.signing import sign_v2, signatures_equal_v2
from authgate.sigv4.canonical import split_query, wire_bytes
from authgate.sigv4.errors import (
    AccessDenied,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from authgate.sigv4.parse import parse_amz_date, parse_http_date
from authgate.sigv4.verify import AccessKeySecret

__all__ = [
    "ONE_MECHANISM",
    "QUERY_PARAMS",
    "SigV2Result",
    "SigV2Verifier",
    "claimed_key_id_v2",
    "is_sigv2",
]

# The parameters of a SigV2 presigned URL.
QUERY_PARAMS = frozenset({"AWSAccessKeyId", "Signature", "Expires"})
_V4_PARAMS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
# An access key id (printable, no ':' or space) and the base64 of a 20-byte HMAC-SHA1.
_AUTHORIZATION = re.compile(r"AWS ([!-9;-~]+):([A-Za-z0-9+/]{27}=)")
_EXPIRES = re.compile(r"[0-9]{1,12}")
# S3's words for a request that carries more than one way to authenticate.
ONE_MECHANISM = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
    "Signature query string parameter or the Authorization header should be specified"
)


@dataclass(slots=True)
class SigV2Result:
    """What a verified SigV2 request proved. Read-only by contract, like ``SigV4Result``.

    ``payload_mode`` is always ``"unsigned"``: SigV2 signs no payload hash.
    """

    access_key: AccessKeySecret
    request_time: datetime  # the Date signed, or the moment a presigned URL expires
    signature: str
    presigned: bool
    payload_mode: Literal["unsigned"] = "unsigned"


def is_sigv2(facts: RequestFacts) -> bool:
    """Whether the request claims SigV2 in any way: an ``Authorization: AWS …`` header,
    or ``AWSAccessKeyId`` / ``Signature`` in the query."""
    if any(value.startswith("AWS ") for value in facts.header_all("authorization")):
        return True
    query = facts.query_string
    if "AWSAccessKeyId" not in query and "Signature" not in query:
        return False
    return any(key in ("AWSAccessKeyId", "Signature") for key, _ in split_query(query))


def claimed_key_id_v2(facts: RequestFacts) -> str | None:
    """The access key id a SigV2 request names, read without checking anything else."""
    authorization = facts.header("authorization")
    if authorization is not None:
        match = _AUTHORIZATION.fullmatch(authorization)
        return match.group(1) if match else None
    for key, value in split_query(facts.query_string):
        if key == "AWSAccessKeyId":
            return _decoded(value, key).decode("utf-8", "replace")
    return None


def _decoded(value: str, name: str) -> bytes:
    # '+' stays a plus: botocore encodes a space as %20, and a signature's '+' as %2B,
    # yet some clients send the signature's '+' bare.
    return unquote_to_bytes(wire_bytes(value))


# Memoised: a busy client sends one Date a second, and parsing one costs a quarter of
# a verification.
@lru_cache(maxsize=128)
def _request_date(stamp: str) -> datetime | None:
    return parse_http_date(stamp) or parse_amz_date(stamp)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SigV2Verifier:
    """Verifies SigV2 requests against access keys from ``lookup`` (the same look-up, and
    so the same cache and decrypted secrets, as ``SigV4Verifier``).

    ``unsigned_params`` names the query parameters a request may carry outside the
    signature (SigV2 signs only S3's sub-resources); any other is refused, since it could
    change what the store does without touching the signature.
    """

    def __init__(
        self,
        lookup: Callable[[str], AccessKeySecret | None],
        *,
        clock: Callable[[], datetime] = now_utc,
        max_skew: timedelta = timedelta(minutes=15),
        unsigned_params: frozenset[str] = frozenset(),
    ) -> None:
        if not timedelta(0) < max_skew <= timedelta(hours=1):
            raise ConfigurationError("SigV2 max_skew must be positive and at most one hour.")
        self._lookup = lookup
        self._clock = clock
        self._max_skew = max_skew
        self._unsigned = unsigned_params

    def verify(self, facts: RequestFacts, *, bucket: str | None = None) -> SigV2Result:
        """Verify ``facts`` or raise an S3Error. ``bucket`` is the virtual-host bucket
        the ``Host`` names (``None`` for a path-style request): S3 signs it as the first
        segment of the resource."""
        found = _query(facts.query_string)
        authorization = facts.header_all("authorization")
        presigned = "AWSAccessKeyId" in found or "Signature" in found
        if (
            len(authorization) > 1
            or (authorization and presigned)
            or _V4_PARAMS.intersection(found)
        ):
            raise InvalidArgument(ONE_MECHANISM, extra={"ArgumentName": "Authorization"})
        if authorization:
            return self._verify_header(facts, authorization[0], found, bucket)
        if presigned:
            return self._verify_query(facts, found, bucket)
        raise AccessDenied("The request carries no AWS Signature Version 2 credentials.")

    def _verify_header(
        self,
        facts: RequestFacts,
        authorization: str,
        query: dict[str, str | None],
        bucket: str | None,
    ) -> SigV2Result:
        match = _AUTHORIZATION.fullmatch(authorization)
        if match is None:
            raise InvalidArgument(
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
                extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
            )
        access_key_id, signature = match.groups()
        amz_dates = facts.header_all("x-amz-date")
        dates = facts.header_all("date")
        if len(amz_dates) > 1 or len(dates) > 1:
            raise AccessDenied("The request carries more than one Date or x-amz-date header.")
        stamp = amz_dates[0] if amz_dates else dates[0] if dates else ""
        moment = _request_date(stamp) if stamp else None
        if moment is None:
            raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
        now = self._clock()
        if abs(now - moment) > self._max_skew:
            raise RequestTimeTooSkewed(
                extra={
                    "RequestTime": stamp,
                    "ServerTime": _iso(now),
                    "MaxAllowedSkewMilliseconds": str(int(self._max_skew.total_seconds() * 1000)),
                }
            )
        # With x-amz-date, S3 signs an empty Date line (the header may be rewritten by
        # a client library; x-amz-date is signed among the x-amz-* headers instead).
        date_line = "" if amz_dates else stamp
        self._check_unsigned(query, presigned=False)
        return self._check(
            facts, access_key_id, signature, date_line, query, bucket, moment, presigned=False
        )

    def _verify_query(
        self, facts: RequestFacts, query: dict[str, str | None], bucket: str | None
    ) -> SigV2Result:
        if not QUERY_PARAMS <= query.keys():
            raise AccessDenied(
                "Query-string authentication requires the Signature, Expires and "
                "AWSAccessKeyId parameters"
            )
        expires_text = query["Expires"] or ""
        if not _EXPIRES.fullmatch(expires_text):
            raise AccessDenied("Invalid date (should be seconds since epoch): " + expires_text)
        try:
            expires_at = datetime.fromtimestamp(int(expires_text), UTC)
        except (OverflowError, ValueError, OSError):  # beyond year 9999
            message = "Invalid date (should be seconds since epoch): " + expires_text
            raise AccessDenied(message) from None
        now = self._clock()
        if now > expires_at:
            raise AccessDenied(
                "Request has expired",
                extra={"Expires": _iso(expires_at), "ServerTime": _iso(now)},
            )
        try:
            access_key_id = _decoded(query["AWSAccessKeyId"] or "", "AWSAccessKeyId").decode(
                "utf-8"
            )
            signature = _decoded(query["Signature"] or "", "Signature").decode("ascii")
        except UnicodeDecodeError:
            raise AccessDenied("The AWSAccessKeyId or Signature parameter is malformed.") from None
        self._check_unsigned(query, presigned=True)
        return self._check(
            facts, access_key_id, signature, expires_text, query, bucket, expires_at, presigned=True
        )

    def _check_unsigned(self, query: dict[str, str | None], *, presigned: bool) -> None:
        for key in query:
            if key in SUB_RESOURCES or key in self._unsigned:
                continue
            if presigned and (
                key in QUERY_PARAMS or key.startswith("x-amz-") or key in _ECHOED_HEADERS
            ):
                continue
            raise AccessDenied(
                f"Access Denied: the query parameter {key!r} is not covered by a Signature "
                "Version 2 signature; sign the request with SigV4 (signature_version='s3v4')."
            )

    def _check(
        self,
        facts: RequestFacts,
        access_key_id: str,
        signature: str,
        date_line: str,
        query: dict[str, str | None],
        bucket: str | None,
        moment: datetime,
        *,
        presigned: bool,
    ) -> SigV2Result:
        record = self._lookup(access_key_id)
        # Unknown and disabled keys answer alike: S3 says InvalidAccessKeyId for both.
        if record is None or not record.active or record.access_key_id != access_key_id:
            raise InvalidAccessKeyId(extra={"AWSAccessKeyId": access_key_id})
        to_sign = string_to_sign_v2(
            facts.method,
            _one_header(facts, "content-md5"),
            _one_header(facts, "content-type"),
            date_line,
            canonical_amz_headers(_amz_headers(facts, query if presigned else {})),
            canonical_resource(facts.raw_path or facts.path, _sub_resources(query), bucket=bucket),
        )
        if not signatures_equal_v2(sign_v2(record.secret, to_sign), signature):
            text = to_sign.decode("utf-8", "replace")
            raise SignatureDoesNotMatch(
                extra={
                    "AWSAccessKeyId": access_key_id,
                    "StringToSign": text,
                    "SignatureProvided": signature,
                    "StringToSignBytes": to_sign.hex(" "),
                }
            )
        return SigV2Result(record, moment, signature, presigned)


# Headers botocore copies into a presigned URL's query beside the x-amz-* ones; the
# signature covers them as the request's own headers.
_ECHOED_HEADERS = frozenset({"content-type", "content-md5"})


def _one_header(facts: RequestFacts, name: str) -> str:
    values = facts.header_all(name)
    if len(values) > 1:
        raise AccessDenied(f"The request carries more than one {name} header.")
    return values[0] if values else ""


def _amz_headers(facts: RequestFacts, query: dict[str, str | None]) -> dict[str, Sequence[str]]:
    """Every ``x-amz-*`` header, and for a presigned URL every ``x-amz-*`` parameter
    (botocore moves the signed headers there); one name in both must say one thing."""
    found: dict[str, list[str]] = {}
    for name, value in facts.headers:
        if name.startswith("x-amz-"):
            found.setdefault(name, []).append(value)
    for key, param in query.items():
        if key.startswith("x-amz-"):
            try:
                value = _decoded(param or "", key).decode("utf-8").encode().decode("latin-1")
            except UnicodeDecodeError:
                raise AccessDenied(f"Access Denied: {key} is not UTF-8.") from None
            if found.setdefault(key, [value]) != [value]:
                raise AccessDenied(f"Access Denied: {key} is a header and a parameter, unequal.")
    return dict(found)


def _sub_resources(query: dict[str, str | None]) -> list[tuple[str, bytes | None]]:
    signed: list[tuple[str, bytes | None]] = []
    for key, value in query.items():
        if key not in SUB_RESOURCES:
            continue
        if value is not None and "+" in value:
            # botocore writes a space as %20 and a plus as %2B: a bare '+' is one the
            # store may read as a space while the signature covers a plus.
            raise AccessDenied(f"Access Denied: the value of {key} has a bare '+'.")
        signed.append((key, None if value is None else _decoded(value, key)))
    return signed


def _query(query_string: str) -> dict[str, str | None]:
    """Each parameter as sent, ``None`` for one without ``=`` (``?acl``: botocore signs
    ``acl``, and ``acl=`` for ``?acl=``); a repeated one is refused."""
    found: dict[str, str | None] = {}
    for piece in query_string.split("&"):
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        if key in found:
            raise InvalidArgument(f"The query parameter {key} appears more than once.")
        found[key] = value if sep else None
    return found
