"""S3's errors for SigV4 requests, rendered as S3 renders them, so SDKs react as they do
against AWS (botocore's region redirector reads ``<Region>``, the CLI prints ``<Message>``).

    S3Error (authgate.errors.AuthgateError)            s3_code, status, message, extra
    ├── AccessDenied                             403   unsigned x-amz-*, presigned URL expired
    ├── InvalidAccessKeyId                       403   unknown or inactive access key
    ├── SignatureDoesNotMatch                    403   carries StringToSign, CanonicalRequest
    ├── RequestTimeTooSkewed                     403   more than 15 minutes off
    ├── AuthorizationHeaderMalformed             400   <Region> when the scope's region is wrong
    ├── AuthorizationQueryParametersError        400   the presigned-URL twin of the above
    ├── XAmzContentSHA256Mismatch                400   body digest differs from the header
    ├── BadDigest                                400   x-amz-checksum-* trailer differs
    ├── IncompleteBody                           400   body ended early or short
    ├── MalformedTrailerError                    400   aws-chunked trailers not as declared
    ├── InvalidArgument                          400
    ├── S3InvalidRequest ("InvalidRequest")      400   missing x-amz-content-sha256, bad framing
    └── MissingSecurityHeader                    400
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape

from authgate.errors import AuthgateError

__all__ = [
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "BadDigest",
    "IncompleteBody",
    "InvalidAccessKeyId",
    "InvalidArgument",
    "MalformedTrailerError",
    "MissingSecurityHeader",
    "RequestTimeTooSkewed",
    "S3Error",
    "S3InvalidRequest",
    "SignatureDoesNotMatch",
    "XAmzContentSHA256Mismatch",
    "render_s3_error",
]

# XML 1.0 cannot carry these at all, not even escaped; a canonical request built from
# latin-1 header bytes may hold them, and one stray byte must not break the whole body.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return escape(_XML_INVALID.sub("\ufffd", value))


class S3Error(AuthgateError):
    s3_code: str = "InternalError"
    status = 500
    code = "s3_internal_error"
    default_detail = "We encountered an internal error. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        # Extra elements in S3's order of appearance (Region, StringToSign, ...).
        self.extra: dict[str, str] = dict(extra or {})

    @property
    def message(self) -> str:
        return self.detail

    def to_xml(self, request_id: str) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{_xml_text(self.s3_code)}</Code>",
            f"<Message>{_xml_text(self.detail)}</Message>",
        ]
        parts.extend(f"<{name}>{_xml_text(value)}</{name}>" for name, value in self.extra.items())
        parts.append(f"<RequestId>{_xml_text(request_id)}</RequestId></Error>")
        return "".join(parts).encode("utf-8")


class AccessDenied(S3Error):
    s3_code = "AccessDenied"
    status = 403
    code = "access_denied"
    default_detail = "Access Denied"


class InvalidAccessKeyId(S3Error):
    s3_code = "InvalidAccessKeyId"
    status = 403
    code = "invalid_access_key_id"
    default_detail = "The AWS Access Key Id you provided does not exist in our records."


class SignatureDoesNotMatch(S3Error):
    s3_code = "SignatureDoesNotMatch"
    status = 403
    code = "signature_does_not_match"
    default_detail = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


class RequestTimeTooSkewed(S3Error):
    s3_code = "RequestTimeTooSkewed"
    status = 403
    code = "request_time_too_skewed"
    default_detail = "The difference between the request time and the current time is too large."


class AuthorizationHeaderMalformed(S3Error):
    s3_code = "AuthorizationHeaderMalformed"
    status = 400
    code = "authorization_header_malformed"
    default_detail = "The authorization header is malformed."


class AuthorizationQueryParametersError(S3Error):
    s3_code = "AuthorizationQueryParametersError"
    status = 400
    code = "authorization_query_parameters_error"
    default_detail = "Error parsing the query-string authentication parameters."


class XAmzContentSHA256Mismatch(S3Error):
    s3_code = "XAmzContentSHA256Mismatch"
    status = 400
    code = "x_amz_content_sha256_mismatch"
    default_detail = "The provided 'x-amz-content-sha256' header does not match what was computed."


class BadDigest(S3Error):
    s3_code = "BadDigest"
    status = 400
    code = "bad_digest"
    default_detail = "The checksum you specified did not match the calculated checksum."


class IncompleteBody(S3Error):
    s3_code = "IncompleteBody"
    status = 400
    code = "incomplete_body"
    default_detail = "The request body terminated unexpectedly"


class MalformedTrailerError(S3Error):
    s3_code = "MalformedTrailerError"
    status = 400
    code = "malformed_trailer"
    default_detail = (
        "The request contained trailing data that was not well-formed "
        "or did not conform to our published schema."
    )


class InvalidArgument(S3Error):
    s3_code = "InvalidArgument"
    status = 400
    code = "invalid_argument"
    default_detail = "Invalid Argument"


class S3InvalidRequest(S3Error):
    """S3's ``InvalidRequest`` (400), named apart from authgate's own 422 InvalidRequest."""

    s3_code = "InvalidRequest"
    status = 400
    code = "s3_invalid_request"
    default_detail = "Invalid Request"


class MissingSecurityHeader(S3Error):
    s3_code = "MissingSecurityHeader"
    status = 400
    code = "missing_security_header"
    default_detail = "Your request was missing a required header"


def render_s3_error(
    err: S3Error, request_id: str, method: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The one place an S3Error becomes a response: status, headers, body.

    A HEAD answer carries no body (HTTP forbids it), so S3 clients read the status alone.
    """
    headers = [("x-amz-request-id", request_id)]
    headers.extend((name.lower(), value) for name, value in err.headers.items())
    if method.upper() == "HEAD":
        return err.status, headers, b""
    body = err.to_xml(request_id)
    headers.append(("content-type", "application/xml"))
    headers.append(("content-length", str(len(body))))
    return err.status, headers, body
