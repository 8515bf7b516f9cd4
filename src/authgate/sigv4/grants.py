"""Which bucket an S3 request touches and which grant it needs: read, write or admin.

``admin`` ⊇ ``write`` ⊇ ``read``. Anything not known to be a read or a data write needs
admin: an unfamiliar subresource is treated as configuration, not waved through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import unquote

__all__ = [
    "Permission",
    "bucket_and_key",
    "copy_source_grant",
    "grant_allows",
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


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:9000
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bucket_and_key(
    raw_path: str, host: str | None, base_domains: Sequence[str] = ()
) -> tuple[str | None, str]:
    """``(bucket, key)`` for virtual-host-style (``bucket.<base domain>``) or path-style.

    The key stays percent-encoded as sent; only the bucket is decoded.
    """
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    if host:
        name = _hostname(host)
        for base in base_domains:
            base = base.strip(".").lower()
            if base and name.endswith("." + base) and len(name) > len(base) + 1:
                return name[: -len(base) - 1], path
    bucket, _, key = path.partition("/")
    return (unquote(bucket) or None), key


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


def copy_source_grant(copy_source: str) -> tuple[str, Permission] | None:
    """The grant an ``x-amz-copy-source`` header needs on the bucket it reads from."""
    source = unquote(copy_source.partition("?")[0]).lstrip("/")
    bucket = source.partition("/")[0]
    return (bucket, "read") if bucket else None
