"""Server-side SigV4 verification: request facts in, a verified access key out.

Header form (``Authorization: AWS4-HMAC-SHA256 ...``) and presigned URLs
(``?X-Amz-Algorithm=AWS4-HMAC-SHA256&...``). The payload is not read here: the result
says how it is protected (``payload_mode``) and ``authgate.sigv4.body`` checks it while
it streams.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from authgate.clock import now_utc
from authgate.errors import ConfigurationError
from authgate.facts import RequestFacts
from authgate.sigv4.canonical import (
    EMPTY_SHA256,
    build_canonical_request,
    split_query,
    wire_bytes,
)
from authgate.sigv4.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    S3Error,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from authgate.sigv4.parse import (
    Credential,
    parse_amz_date,
    parse_authorization,
    parse_http_date,
    parse_presigned,
)
from authgate.sigv4.signing import (
    ALGORITHM,
    SigningKeyCache,
    signatures_equal,
    string_to_sign,
)

__all__ = ["AccessKeySecret", "PayloadMode", "SigV4Result", "SigV4Verifier", "is_sigv4"]

PayloadMode = Literal[
    "sha256",
    "unsigned",
    "streaming-signed",
    "streaming-signed-trailer",
    "streaming-unsigned-trailer",
]

_PAYLOAD_MODES: dict[str, PayloadMode] = {
    "UNSIGNED-PAYLOAD": "unsigned",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": "streaming-signed",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": "streaming-signed-trailer",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER": "streaming-unsigned-trailer",
}
_STREAMING = frozenset(
    ("streaming-signed", "streaming-signed-trailer", "streaming-unsigned-trailer")
)
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"[0-9]{1,19}")
_PRESIGN_KEYS = frozenset(("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"))
_STS_HEADER = "x-amz-security-token"
_CONTENT_SHA256 = "x-amz-content-sha256"
_STS_PARAM = "X-Amz-Security-Token"
_CONTENT_SHA256_VALUES = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
    "or a valid sha256 value."
)


@dataclass(frozen=True, slots=True)
class AccessKeySecret:
    """An access key as the store hands it to the verifier (secret decrypted)."""

    access_key_id: str
    secret: str = field(repr=False)
    name: str = ""
    grants: Mapping[str, str] = field(default_factory=dict)  # bucket -> read|write|admin
    active: bool = True
    key_id: str = ""  # the store's internal id, for audit lines


@dataclass(slots=True)
class SigV4Result:
    """What a verified request proved, and what its body still has to prove.

    Read-only by contract, not frozen: made on every request, and a frozen dataclass of
    this size costs more to build than hashing the canonical request does.
    """

    access_key: AccessKeySecret
    credential: Credential
    signing_key: bytes = field(repr=False)
    timestamp: str  # as signed: 20150830T123600Z
    request_time: datetime
    signature: str  # the seed signature that chunk signatures chain from
    payload_mode: PayloadMode
    content_sha256: str | None  # lower-case hex the body must hash to ("sha256" mode)
    decoded_content_length: int | None  # x-amz-decoded-content-length, aws-chunked only
    trailer_names: tuple[str, ...]  # x-amz-trailer, lower-cased
    signed_headers: tuple[str, ...]
    presigned: bool
    security_token: str | None

    @property
    def scope(self) -> str:
        return self.credential.scope


@dataclass(slots=True)
class _Claim:
    """What the header or the query claims, parsed and checked for shape and time."""

    credential: Credential
    timestamp: str
    moment: datetime
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool
    security_token: str | None


def is_sigv4(facts: RequestFacts) -> bool:
    """Whether the request claims SigV4 at all (header or presigned URL)."""
    auth = facts.header("authorization")
    if auth is not None and auth.startswith(ALGORITHM):
        return True
    if "X-Amz-" not in facts.query_string:
        return False
    return any(
        key in ("X-Amz-Algorithm", "X-Amz-Signature") for key, _ in split_query(facts.query_string)
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _spaced_hex(data: bytes) -> str:
    return data.hex(" ")


class SigV4Verifier:
    """Verifies SigV4 requests against access keys from ``lookup``.

    ``region=None`` accepts any region in the credential scope (an S3-compatible store
    that ignores regions); otherwise a wrong region is answered as S3 does, with the
    expected ``<Region>``, so botocore's redirector retries in the right one.
    ``normalize_path`` is for non-S3 services only: S3 signs the path exactly as sent.
    ``allow_unsigned_session_token`` is for services that add X-Amz-Security-Token after
    signing (aws4_testsuite ``post-sts-header-after``); S3 never does, so it is refused.
    """

    def __init__(
        self,
        lookup: Callable[[str], AccessKeySecret | None],
        *,
        region: str | None = "us-east-1",
        service: str = "s3",
        clock: Callable[[], datetime] = now_utc,
        max_skew: timedelta = timedelta(minutes=15),
        normalize_path: bool = False,
        allow_unsigned_session_token: bool = False,
        key_cache: SigningKeyCache | None = None,
    ) -> None:
        if region is not None and not region:
            raise ConfigurationError("SigV4 region must be a name (or None to accept any).")
        if not service:
            raise ConfigurationError("SigV4 service must be a name, e.g. 's3'.")
        if not timedelta(0) < max_skew <= timedelta(hours=1):
            raise ConfigurationError("SigV4 max_skew must be positive and at most one hour.")
        if allow_unsigned_session_token and service == "s3":
            raise ConfigurationError("S3 always signs X-Amz-Security-Token; refusing to skip it.")
        self._lookup = lookup
        self._region = region
        self._service = service
        self._clock = clock
        self._max_skew = max_skew
        self._normalize = normalize_path
        self._unsigned_token = allow_unsigned_session_token
        self._keys = key_cache if key_cache is not None else SigningKeyCache()

    def verify(
        self, facts: RequestFacts, *, host: str | None = None, body: bytes | None = None
    ) -> SigV4Result:
        """Verify ``facts`` or raise an S3Error.

        ``host`` replaces the Host header's value (a trusted proxy's X-Forwarded-Host).
        ``body`` is hashed only for requests without x-amz-content-sha256 (non-S3
        services); without it such a request is taken to have an empty body, which the
        body checker then enforces.
        """
        pairs = split_query(facts.query_string)
        authorization = facts.header_all("authorization")
        presigned = any(key in _PRESIGN_KEYS for key, _ in pairs)
        if authorization and presigned:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                extra={"ArgumentName": "Authorization", "ArgumentValue": authorization[0]},
            )
        if authorization:
            return self._verify_header(facts, authorization, host, body)
        if presigned:
            return self._verify_presigned(facts, pairs, host, body)
        raise AccessDenied("The request carries no AWS Signature Version 4 credentials.")

    def _verify_header(
        self,
        facts: RequestFacts,
        authorization: list[str],
        host: str | None,
        body: bytes | None,
    ) -> SigV4Result:
        malformed = AuthorizationHeaderMalformed
        if len(authorization) != 1:
            raise malformed("The request carries more than one Authorization header.")
        auth = parse_authorization(authorization[0])
        cred = auth.credential
        self._check_scope(cred, malformed, "The authorization header is malformed;")
        timestamp, moment = self._header_time(facts)
        if timestamp[:8] != cred.date:
            raise malformed(
                "The authorization header is malformed; Invalid credential date. "
                "Date is not the same as X-Amz-Date."
            )
        now = self._clock()
        if abs(now - moment) > self._max_skew:
            raise RequestTimeTooSkewed(
                extra={
                    "RequestTime": timestamp,
                    "ServerTime": _iso(now),
                    "MaxAllowedSkewMilliseconds": str(int(self._max_skew.total_seconds() * 1000)),
                }
            )
        claim = _Claim(
            credential=cred,
            timestamp=timestamp,
            moment=moment,
            signed_headers=auth.signed_headers,
            signature=auth.signature,
            presigned=False,
            security_token=facts.header(_STS_HEADER),
        )
        return self._check(facts, claim, (), host, body)

    def _verify_presigned(
        self,
        facts: RequestFacts,
        pairs: list[tuple[str, str]],
        host: str | None,
        body: bytes | None,
    ) -> SigV4Result:
        error = AuthorizationQueryParametersError
        params = parse_presigned(pairs)
        cred = params.credential
        self._check_scope(cred, error, "Error parsing the X-Amz-Credential parameter;")
        moment = parse_amz_date(params.amz_date)
        if moment is None:
            raise error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
        if params.amz_date[:8] != cred.date:
            raise error(
                "Error parsing the X-Amz-Credential parameter; Invalid credential date. "
                "Date is not the same as X-Amz-Date."
            )
        now = self._clock()
        # A client clock a little ahead is forgiven as for header auth; expiry is not.
        if moment - now > self._max_skew:
            raise AccessDenied(
                "Request is not valid yet",
                extra={"X-Amz-Date": params.amz_date, "ServerTime": _iso(now)},
            )
        expires_at = moment + timedelta(seconds=params.expires)
        if now > expires_at:
            raise AccessDenied(
                "Request has expired",
                extra={
                    "X-Amz-Expires": str(params.expires),
                    "Expires": _iso(expires_at),
                    "ServerTime": _iso(now),
                },
            )
        claim = _Claim(
            credential=cred,
            timestamp=params.amz_date,
            moment=moment,
            signed_headers=params.signed_headers,
            signature=params.signature,
            presigned=True,
            security_token=params.security_token,
        )
        exclude = ("X-Amz-Signature", _STS_PARAM) if self._unsigned_token else ("X-Amz-Signature",)
        return self._check(facts, claim, exclude, host, body)

    def _check(
        self,
        facts: RequestFacts,
        claim: _Claim,
        exclude_query: tuple[str, ...],
        host: str | None,
        body: bytes | None,
    ) -> SigV4Result:
        """What both forms share once the claim is well-formed and timely."""
        cred = claim.credential
        record = self._access_key(cred.access_key_id)
        self._check_all_amz_signed(facts, claim.signed_headers)
        payload_hash, mode, content_sha256 = self._payload(facts, body, presigned=claim.presigned)
        creq = build_canonical_request(
            facts,
            claim.signed_headers,
            payload_hash,
            normalize=self._normalize,
            host=host,
            exclude_query=exclude_query,
        )
        creq_bytes = wire_bytes(creq)
        sts = string_to_sign(claim.timestamp, cred.scope, creq_bytes)
        key = self._keys.signing_key(record.secret, cred.date, cred.region, cred.service)
        if not signatures_equal(key.sign(sts), claim.signature):
            raise SignatureDoesNotMatch(
                extra={
                    "AWSAccessKeyId": cred.access_key_id,
                    "StringToSign": sts,
                    "SignatureProvided": claim.signature,
                    "StringToSignBytes": _spaced_hex(sts.encode("utf-8")),
                    "CanonicalRequest": creq_bytes.decode("utf-8", "replace"),
                    "CanonicalRequestBytes": _spaced_hex(creq_bytes),
                }
            )
        if body is not None and content_sha256 is not None and facts.header(_CONTENT_SHA256):
            # The client named a digest and the body is at hand: check it now, after the
            # signature, so an unauthenticated sender learns nothing from the answer.
            _check_body_digest(body, content_sha256)
        decoded_length, trailers = _streaming_headers(facts, mode)
        return SigV4Result(
            access_key=record,
            credential=cred,
            signing_key=key.key,
            timestamp=claim.timestamp,
            request_time=claim.moment,
            signature=claim.signature,
            payload_mode=mode,
            content_sha256=content_sha256,
            decoded_content_length=decoded_length,
            trailer_names=trailers,
            signed_headers=claim.signed_headers,
            presigned=claim.presigned,
            security_token=claim.security_token,
        )

    def _check_scope(self, cred: Credential, error: type[S3Error], prefix: str) -> None:
        if cred.service != self._service:
            raise error(
                f"{prefix} Credential should be scoped to correct service: '{self._service}'."
            )
        if self._region is not None and cred.region != self._region:
            raise error(
                f"{prefix} the region '{cred.region}' is wrong; expecting '{self._region}'",
                extra={"Region": self._region},
            )

    def _header_time(self, facts: RequestFacts) -> tuple[str, datetime]:
        amz_dates = facts.header_all("x-amz-date")
        if len(amz_dates) > 1:
            raise AuthorizationHeaderMalformed("The request carries more than one X-Amz-Date.")
        moment: datetime | None = None
        if amz_dates:
            timestamp = amz_dates[0]
            moment = parse_amz_date(timestamp)
        else:
            dates = facts.header_all("date")
            if len(dates) == 1:
                moment = parse_amz_date(dates[0]) or parse_http_date(dates[0])
            timestamp = moment.strftime("%Y%m%dT%H%M%SZ") if moment is not None else ""
        if moment is None:
            raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
        return timestamp, moment

    def _access_key(self, access_key_id: str) -> AccessKeySecret:
        record = self._lookup(access_key_id)
        # Unknown and disabled keys answer alike: S3 says InvalidAccessKeyId for both.
        if record is None or not record.active or record.access_key_id != access_key_id:
            raise InvalidAccessKeyId(extra={"AWSAccessKeyId": access_key_id})
        return record

    def _check_all_amz_signed(self, facts: RequestFacts, signed_headers: Sequence[str]) -> None:
        # An unsigned x-amz-* header could change what the request does (ACLs, copy
        # sources, SSE keys) without touching the signature.
        unsigned: set[str] = set()
        for name, _ in facts.headers:
            if name.startswith("x-amz-") and name not in signed_headers:
                if not (self._unsigned_token and name == _STS_HEADER):
                    unsigned.add(name)
        if unsigned:
            raise AccessDenied(
                "There were headers present in the request which were not signed",
                extra={"HeadersNotSigned": ", ".join(sorted(unsigned))},
            )

    def _payload(
        self, facts: RequestFacts, body: bytes | None, *, presigned: bool
    ) -> tuple[str, PayloadMode, str | None]:
        values = facts.header_all(_CONTENT_SHA256)
        if len(values) > 1:
            raise InvalidArgument("The request carries more than one x-amz-content-sha256.")
        if values:
            value = values[0]
            mode = _PAYLOAD_MODES.get(value)
            if mode is not None:
                return value, mode, None
            if not _HEX_SHA256.fullmatch(value):
                raise InvalidArgument(
                    _CONTENT_SHA256_VALUES,
                    extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value},
                )
            return value, "sha256", value.lower()
        if self._service == "s3":
            # S3 signs presigned URLs over the constant; header auth must name its payload.
            if presigned:
                return "UNSIGNED-PAYLOAD", "unsigned", None
            raise S3InvalidRequest("Missing required header for this request: x-amz-content-sha256")
        digest = hashlib.sha256(body).hexdigest() if body is not None else EMPTY_SHA256
        return digest, "sha256", digest


def _check_body_digest(body: bytes, expected: str) -> None:
    computed = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(computed, expected):
        raise XAmzContentSHA256Mismatch(
            extra={"ClientComputedContentSHA256": expected, "S3ComputedContentSHA256": computed}
        )


def _streaming_headers(
    facts: RequestFacts, mode: PayloadMode
) -> tuple[int | None, tuple[str, ...]]:
    """x-amz-decoded-content-length and x-amz-trailer, for aws-chunked bodies only."""
    if mode not in _STREAMING:
        return None, ()
    decoded = facts.header_all("x-amz-decoded-content-length")
    if len(decoded) > 1 or (decoded and not _DECIMAL.fullmatch(decoded[0])):
        raise InvalidArgument("x-amz-decoded-content-length must be one decimal number.")
    length = int(decoded[0]) if decoded else None
    if mode == "streaming-signed":
        return length, ()
    trailers = tuple(
        name.strip().lower()
        for value in facts.header_all("x-amz-trailer")
        for name in value.split(",")
        if name.strip()
    )
    return length, trailers
