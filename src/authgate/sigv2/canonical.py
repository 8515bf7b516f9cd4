"""SigV2's string to sign, as S3 defines it (RESTAuthentication) and botocore's
``HmacV1Auth`` computes it:

    METHOD \\n Content-MD5 \\n Content-Type \\n Date (or Expires) \\n
    x-amz-name:value \\n ... /bucket/key?sub-resources

Built from the bytes the client sent (header values and the path are latin-1 views of
the wire), so a non-ASCII key signs as the client's UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from authgate.sigv4.canonical import wire_bytes

__all__ = ["SUB_RESOURCES", "canonical_amz_headers", "canonical_resource", "string_to_sign_v2"]

# The query parameters a SigV2 signature covers, botocore's ``HmacV1Auth.QSAOfInterest``
# (S3's list of sub-resources and response overrides); every other one is left unsigned.
SUB_RESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    }
)


def canonical_amz_headers(values: Mapping[str, Sequence[str]]) -> bytes:
    """``name:v1,v2`` lines for each ``x-amz-*`` name (lower case), sorted, each value
    trimmed; empty when there are none."""
    return b"".join(
        name.encode("latin-1")
        + b":"
        + b",".join(wire_bytes(v.strip()) for v in values[name])
        + b"\n"
        for name in sorted(values)
    )


def canonical_resource(
    raw_path: str, sub_resources: Iterable[tuple[str, bytes | None]], bucket: str | None = None
) -> bytes:
    """The path as sent, under ``/bucket`` for a virtual-host-style request, then the
    signed sub-resources sorted by name: ``name`` or ``name=decoded value``.

    A request for a bucket alone signs ``/bucket/`` in both styles (S3 wants the slash,
    and botocore signs it while sending ``/bucket``).
    """
    path = raw_path or "/"
    if bucket is not None:
        path = "/" + bucket + path
    elif path.count("/") == 1 and len(path) > 1:
        path += "/"
    resource = wire_bytes(path)
    signed = sorted(sub_resources, key=lambda pair: pair[0])
    if signed:
        resource += b"?" + b"&".join(
            name.encode("ascii") + (b"" if value is None else b"=" + value)
            for name, value in signed
        )
    return resource


def string_to_sign_v2(
    method: str,
    content_md5: str,
    content_type: str,
    date: str,
    amz_headers: bytes,
    resource: bytes,
) -> bytes:
    head = "\n".join((method.upper(), content_md5.strip(), content_type.strip(), date))
    return wire_bytes(head) + b"\n" + amz_headers + resource
