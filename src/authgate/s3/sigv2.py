"""SigV2 requests at the gate: the same keys, grants and S3 answers as SigV4's.

``S3SigV2.verify`` reads the bucket the ``Host`` names exactly as the grant check will
(``authgate.s3.grants.host_bucket``, with the same signed host), so the resource a
signature covers is the one whose grant is checked and which the store serves; then
``S3Access.authorize`` checks the grants as for SigV4.

SigV2 signs only S3's sub-resources of the query. The parameters left unsigned that a
request may still carry are listing filters (a presigned ListObjects URL with another
``prefix`` lists other keys of a bucket its key may read anyway); any other is refused,
since it could turn the signed request into another operation.
"""

from __future__ import annotations

import logging

from authgate.errors import AuthgateError
from authgate.facts import RequestFacts
from authgate.manage.access_keys import is_access_key_id
from authgate.principal import Principal
from authgate.s3.access import S3Access
from authgate.s3.grants import host_bucket
from authgate.sigv2 import SigV2Result, SigV2Verifier, claimed_key_id_v2

__all__ = ["UNSIGNED_FILTERS", "S3SigV2", "SignedV2"]

log = logging.getLogger("authgate.s3")

SignedV2 = tuple[Principal, SigV2Result]

# Query parameters that only filter or page a listing, or name the operation for
# botocore's own routing (x-id); SigV2 leaves them unsigned.
UNSIGNED_FILTERS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "continuation-token",
        "start-after",
        "encoding-type",
        "fetch-owner",
        "key-marker",
        "version-id-marker",
        "upload-id-marker",
        "max-uploads",
        "max-parts",
        "part-number-marker",
        "x-id",
    }
)


class S3SigV2:
    """SigV2 verification beside ``S3Access``'s SigV4: its host reading, its usage
    record, its key cache."""

    def __init__(self, access: S3Access, verifier: SigV2Verifier) -> None:
        self.access = access
        self.verifier = verifier

    def needs_io(self, facts: RequestFacts) -> bool:
        """Whether verifying would read the store (the key is not in memory)."""
        is_cached = self.access.is_cached
        if is_cached is None:
            return True
        claimed = claimed_key_id_v2(facts)
        return claimed is not None and is_access_key_id(claimed) and not is_cached(claimed)

    def verify(self, facts: RequestFacts) -> SignedV2 | AuthgateError:
        access = self.access

        def verify() -> SigV2Result:
            host = access.signed_host(facts) or facts.header("host")
            return self.verifier.verify(facts, bucket=host_bucket(host, access.base_domains))

        return access.signed("SigV2", verify)
