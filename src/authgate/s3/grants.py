"""Which bucket an S3 request touches and which grant it needs: read, write or admin.

``admin`` ⊇ ``write`` ⊇ ``read``. Anything not known to be a read or a data write needs
admin: an unfamiliar subresource is treated as configuration, not waved through.

The bucket is read the way S3-compatible stores read it, and a request that stores
could read in more than one way is refused (``UnclearBucket``) rather than guessed at:
a ``Host`` that a store may take for a virtual-host bucket (moto takes the first label
of any dotted name; MinIO does under ``MINIO_DOMAIN``) unless it is a known base domain
or under one; a percent-encoded bucket segment; a copy source in any form but S3's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Literal
from urllib.parse import unquote

from authgate.sigv4.errors import S3InvalidRequest

__all__ = [
    "CopySource",
    "Permission",
    "UnclearBucket",
    "bucket_and_key",
    "copy_source_grant",
    "grant_allows",
    "host_bucket",
    "parse_copy_source",
    "required_grant",
]

Permission = Literal["read", "write", "admin"]

_RANK = {"read": 1, "write": 2, "admin": 3}

# Bucket GET parameters that only list (ListObjects v1/v2, versions, uploads, location).
_LIST_PARAMS = frozenset(
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
        "allow-unordered",
        "optional-object-attributes",
        "versions",
        "key-marker",
        "version-id-marker",
        "uploads",
        "upload-id-marker",
        "max-uploads",
        "location",
        "x-id",
    }
)
# Object subresources whose PUT changes who may do what, or locks data against deletion.
_OBJECT_ADMIN = frozenset({"acl", "policy", "retention", "legal-hold"})


def grant_allows(granted: str, needed: str) -> bool:
    """Whether a grant of ``granted`` covers ``needed``; unknown words allow nothing."""
    have = _RANK.get(granted)
    want = _RANK.get(needed)
    return have is not None and want is not None and have >= want


class UnclearBucket(S3InvalidRequest):
    """A request whose bucket S3-compatible stores could read in more than one way."""

    code = "s3_unclear_bucket"


# A bucket as written in a path, a copy source or a virtual host: S3's characters only,
# so that no decoding, case folding or splitting can make it another name.
_PATH_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]*")
_HOST_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]*")
_PORT = re.compile(r"[0-9]*")


def _hostname(host: str) -> str:
    """The name or address of a ``Host`` value, without its port; as sent (case kept)."""
    host = host.strip()
    if host.startswith("["):  # [::1]:9000
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            raise UnclearBucket("The Host header is not a host name or address.")
        return host[: end + 1]
    name, colon, port = host.partition(":")
    if colon and not _PORT.fullmatch(port):
        raise UnclearBucket("The Host header is not a host name or address.")
    return name


def _is_address(name: str) -> bool:
    try:
        ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    return True


def host_bucket(host: str | None, base_domains: Sequence[str] = ()) -> str | None:
    """The bucket a store reads from ``Host`` (virtual-host style), ``None`` for none
    (path style): an address, a name without a dot, or a base domain itself.

    Any other dotted name is refused: stores differ on it (moto reads its first label as
    a bucket, MinIO only names under its ``MINIO_DOMAIN``), so authgate cannot know which
    bucket the store will serve. Nor can it for a virtual-host bucket with a dot in it
    (moto reads ``a`` of ``a.b.<base>``, MinIO ``a.b``) or in capitals (folded or not).
    """
    if not host:
        return None
    name = _hostname(host)
    if _is_address(name):
        return None
    lower = name.lower()
    for base in base_domains:
        base = base.strip(".").lower()
        if not base:
            continue
        if lower == base:
            return None
        if lower.endswith("." + base):
            bucket = name[: -len(base) - 1]
            if not _HOST_BUCKET.fullmatch(bucket):
                raise UnclearBucket(
                    f"{bucket!r} is not a bucket a store reads one way from the Host: "
                    "use path-style requests for it."
                )
            return bucket
    if "." not in name:
        return None
    raise UnclearBucket(
        f"The Host {name!r} is not an S3 endpoint authgate knows, and a store could read "
        "a bucket from it: list the endpoint's name in s3_base_domains."
    )


def bucket_and_key(
    raw_path: str, host: str | None, base_domains: Sequence[str] = ()
) -> tuple[str | None, str]:
    """``(bucket, key)`` for virtual-host-style (``bucket.<base domain>``) or path-style.

    The key stays percent-encoded as sent. A path-style bucket must be written in S3's
    characters (no percent-encoding): ``UnclearBucket`` otherwise.
    """
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    bucket = host_bucket(host, base_domains)
    if bucket is not None:
        return bucket, path
    segment, _, key = path.partition("/")
    if segment and not _PATH_BUCKET.fullmatch(segment):
        raise UnclearBucket(
            "The bucket in the path is not written in S3's characters "
            "(lower-case letters, digits, '.' and '-', not percent-encoded)."
        )
    return (segment or None), key


def required_grant(
    method: str,
    raw_path: str,
    host: str | None,
    query_keys: Iterable[str],
    *,
    base_domains: Sequence[str] = (),
) -> tuple[str | None, Permission]:
    """``(bucket, permission)`` one S3 request needs; bucket None for ListBuckets (GET /).

    CopyObject and UploadPartCopy also read another bucket: see ``copy_source_grant``.
    """
    method = method.upper()
    keys = frozenset(query_keys)
    bucket, key = bucket_and_key(raw_path, host, base_domains)
    if bucket is None:
        return None, "read" if method in ("GET", "HEAD") else "admin"
    if key:
        return bucket, _object_permission(method, keys)
    return bucket, _bucket_permission(method, keys)


def _object_permission(method: str, keys: frozenset[str]) -> Permission:
    if method in ("GET", "HEAD"):
        return "read"
    if method == "PUT":
        return "admin" if keys & _OBJECT_ADMIN else "write"
    if method == "DELETE":
        return "write"
    if method == "POST":
        if "select" in keys:  # SelectObjectContent reads, though it POSTs
            return "read"
        if keys & {"uploads", "uploadId", "restore"}:
            return "write"
    return "admin"


def _bucket_permission(method: str, keys: frozenset[str]) -> Permission:
    if method in ("GET", "HEAD"):
        return "read" if keys <= _LIST_PARAMS else "admin"
    if method == "POST" and (not keys or keys <= {"delete", "x-id"}):
        # DeleteObjects (?delete) and browser-form uploads write objects, not the bucket.
        return "write"
    return "admin"


@dataclass(frozen=True, slots=True)
class CopySource:
    """An ``x-amz-copy-source`` as S3 reads it: the key decoded, the version as sent."""

    bucket: str
    key: str
    version_id: str | None = None


# S3's form, and only it: "bucket/key" or "/bucket/key", the key URL-encoded, then
# "?versionId=..." or nothing. Every character that a URL parser would treat as
# structure (a second leading slash, "?", "#", ";", a scheme's ":" before the bucket)
# or strip (spaces, controls) is outside it, so stores that run the value through
# urlparse (moto) or read it by hand read the same bucket and key.
_COPY_SOURCE = re.compile(
    r"/?(?P<bucket>[a-z0-9][a-z0-9.-]*)/(?P<key>[!-~]+?)"
    r"(?:\?versionId=(?P<version>[A-Za-z0-9._~/%-]+))?"
)
_KEY_STRUCTURE = frozenset("?#;")


def parse_copy_source(value: str) -> CopySource:
    """``x-amz-copy-source`` read once, or ``UnclearBucket`` for any other form."""
    match = _COPY_SOURCE.fullmatch(value)
    raw_key = match.group("key") if match is not None else ""
    if match is None or _KEY_STRUCTURE & set(raw_key):
        raise UnclearBucket(
            "x-amz-copy-source must be bucket/key or /bucket/key, URL-encoded, with at "
            "most ?versionId=..."
        )
    try:
        key = unquote(raw_key, errors="strict")
    except UnicodeDecodeError:
        raise UnclearBucket("x-amz-copy-source's key is not URL-encoded UTF-8.") from None
    # A store that normalises the path would read "b/../other/k" as bucket "other".
    if any(part in (".", "..") for part in key.split("/")):
        raise UnclearBucket("x-amz-copy-source's key has '.' or '..' segments.")
    return CopySource(match.group("bucket"), key, match.group("version"))


def copy_source_grant(copy_source: str) -> tuple[str, Permission]:
    """The grant an ``x-amz-copy-source`` header needs on the bucket it reads from;
    ``UnclearBucket`` for a value not in S3's form."""
    return parse_copy_source(copy_source).bucket, "read"
