"""AWS Signature Version 2 for S3, verified server-side and framework-free.

``SigV2Verifier.verify(facts)`` checks the header form (``Authorization: AWS id:sig``)
and presigned URLs (``AWSAccessKeyId``, ``Signature``, ``Expires``) with HMAC-SHA1 and
returns a ``SigV2Result``; failures are the ``S3Error``s of ``authgate.sigv4``.
``sign_v2`` is the HMAC itself, for S3's other SigV2 signatures (POST policies).
Which grant a request needs is authgate's policy: ``authgate.s3``.
"""

from __future__ import annotations

from authgate.sigv2.canonical import (
    SUB_RESOURCES,
    canonical_amz_headers,
    canonical_resource,
    string_to_sign_v2,
)
from authgate.sigv2.signing import sign_v2, signatures_equal_v2
from authgate.sigv2.verify import (
    ONE_MECHANISM,
    QUERY_PARAMS,
    SigV2Result,
    SigV2Verifier,
    claimed_key_id_v2,
    is_sigv2,
)

__all__ = [
    "ONE_MECHANISM",
    "QUERY_PARAMS",
    "SUB_RESOURCES",
    "SigV2Result",
    "SigV2Verifier",
    "canonical_amz_headers",
    "canonical_resource",
    "claimed_key_id_v2",
    "is_sigv2",
    "sign_v2",
    "signatures_equal_v2",
    "string_to_sign_v2",
]
