"""AWS Signature Version 4, verified server-side and framework-free.

``SigV4Verifier.verify(facts)`` checks a request's signature (header or presigned URL)
and returns a ``SigV4Result``; ``body_checker(result)`` then checks the body as it
streams (SHA-256, aws-chunked signatures, checksum trailers); every failure is an
``S3Error`` rendered by ``render_s3_error`` as S3 would. Which bucket grant a request
needs is authgate's policy, not the spec: ``authgate.s3.grants``.
"""

from __future__ import annotations

from authgate.sigv4.body import (
    AwsChunkedChecker,
    BodyChecker,
    Sha256Checker,
    UnsignedChecker,
    body_checker,
)
from authgate.sigv4.canonical import (
    EMPTY_SHA256,
    build_canonical_request,
    canonical_header_value,
    canonical_query,
    canonical_uri,
    split_query,
)
from authgate.sigv4.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    IncompleteBody,
    InvalidAccessKeyId,
    InvalidArgument,
    MalformedTrailerError,
    MissingSecurityHeader,
    RequestTimeTooSkewed,
    S3Error,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    render_s3_error,
)
from authgate.sigv4.parse import (
    AuthorizationHeader,
    Credential,
    PresignedQuery,
    parse_authorization,
    parse_presigned,
)
from authgate.sigv4.signing import (
    SigningKeyCache,
    chunk_string_to_sign,
    derive_signing_key,
    sign,
    string_to_sign,
    trailer_string_to_sign,
)
from authgate.sigv4.verify import (
    AccessKeySecret,
    PayloadMode,
    SigV4Result,
    SigV4Verifier,
    is_sigv4,
)

__all__ = [
    "EMPTY_SHA256",
    "AccessDenied",
    "AccessKeySecret",
    "AuthorizationHeader",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "AwsChunkedChecker",
    "BadDigest",
    "BodyChecker",
    "Credential",
    "IncompleteBody",
    "InvalidAccessKeyId",
    "InvalidArgument",
    "MalformedTrailerError",
    "MissingSecurityHeader",
    "PayloadMode",
    "PresignedQuery",
    "RequestTimeTooSkewed",
    "S3Error",
    "S3InvalidRequest",
    "Sha256Checker",
    "SigV4Result",
    "SigV4Verifier",
    "SignatureDoesNotMatch",
    "SigningKeyCache",
    "UnsignedChecker",
    "XAmzContentSHA256Mismatch",
    "body_checker",
    "build_canonical_request",
    "canonical_header_value",
    "canonical_query",
    "canonical_uri",
    "chunk_string_to_sign",
    "derive_signing_key",
    "is_sigv4",
    "parse_authorization",
    "parse_presigned",
    "render_s3_error",
    "sign",
    "split_query",
    "string_to_sign",
    "trailer_string_to_sign",
]
