"""A ListBuckets answer filtered down to the buckets a key has a grant on."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

from authgate.s3.buckets import grant_for
from authgate.s3.grants import grant_allows
from authgate.sigv4 import S3Error

__all__ = ["ListBucketsFilterError", "decode_body", "filter_list_buckets", "listed_buckets"]


class ListBucketsFilterError(S3Error):
    s3_code = "InternalError"
    status = 500
    code = "s3_internal_error"
    default_detail = "The bucket list could not be filtered, so it is not shown."


_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_BUCKET_ELEMENT = re.compile(rb"<" + _PREFIX + rb"Bucket>.*?</" + _PREFIX + rb"Bucket>\s*", re.S)
_NAME_ELEMENT = re.compile(rb"<" + _PREFIX + rb"Name>(.*?)</" + _PREFIX + rb"Name>", re.S)


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The body without gzip / deflate, or ``ListBucketsFilterError`` for anything else."""
    encoding = (content_encoding or "identity").strip().lower()
    try:
        if encoding == "identity":
            return body
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, wbits=31)
        if encoding == "deflate":
            return zlib.decompress(body)
    except zlib.error:
        raise ListBucketsFilterError() from None
    raise ListBucketsFilterError()


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def listed_buckets(body: bytes) -> list[str]:
    """The bucket names of a ListAllMyBucketsResult, read by an XML parser; anything else
    (another root element — the answer to a request the store read as another
    operation —, a ``Bucket`` outside ``Buckets``, a DTD) is ``ListBucketsFilterError``."""
    if b"<!" in body.replace(b"<![CDATA[", b""):
        raise ListBucketsFilterError()  # a DTD or a comment: S3 sends neither
    try:
        # No DTD reached this line, so no entity can expand: the stdlib parser is safe.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        raise ListBucketsFilterError() from None
    if _local_name(root.tag) != "ListAllMyBucketsResult":
        raise ListBucketsFilterError()
    lists = [child for child in root if _local_name(child.tag) == "Buckets"]
    if len(lists) > 1:
        raise ListBucketsFilterError()
    listed = [child for buckets in lists for child in buckets]
    everywhere = [element for element in root.iter() if _local_name(element.tag) == "Bucket"]
    if len(everywhere) != len(listed) or any(_local_name(e.tag) != "Bucket" for e in listed):
        raise ListBucketsFilterError()
    names = []
    for bucket in listed:
        found = [child for child in bucket if _local_name(child.tag) == "Name"]
        if len(found) != 1:
            raise ListBucketsFilterError()
        names.append((found[0].text or "").strip())
    return names


def filter_list_buckets(body: bytes, grants: Mapping[str, str]) -> bytes:
    """A ListAllMyBucketsResult with only the buckets ``grants`` give at least read on,
    each judged by its most specific grant (``authgate.s3.buckets.grant_for``).

    Edited in place (no parse and re-serialisation), so everything else — owner,
    continuation token, namespaces — stays exactly as the store wrote it. The parser
    reads the answer before and after the edit: the edit must have left exactly the
    granted buckets, or nothing is shown.
    """

    def granted(bucket: str) -> bool:
        return grant_allows(grant_for(grants, bucket) or "", "read")

    def keep(match: re.Match[bytes]) -> bytes:
        name = _NAME_ELEMENT.search(match.group())
        if name is None:
            return b""
        bucket = unescape(name.group(1).decode("utf-8", "replace")).strip()
        return match.group() if granted(bucket) else b""

    expected = [name for name in listed_buckets(body) if granted(name)]
    filtered = _BUCKET_ELEMENT.sub(keep, body)
    if listed_buckets(filtered) != expected:
        raise ListBucketsFilterError()
    return filtered
