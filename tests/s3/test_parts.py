"""The pieces under the S3 flows, without a server: ListBuckets filtering, the WSGI body
reader's hold-back, refusals in S3's words, body framing."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import zlib

import pytest

from authgate.adapters.s3 import AsgiS3, GuardedInput
from authgate.errors import Forbidden, NotReady, RateLimited
from authgate.s3.access import S3Pass, as_s3_error
from authgate.s3.body import BodyGuard, has_body
from authgate.s3.listbuckets import ListBucketsFilterError, decode_body, filter_list_buckets
from authgate.sigv4 import (
    AccessKeySecret,
    Credential,
    S3Error,
    SigV4Result,
    XAmzContentSHA256Mismatch,
)

LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<s3:ListAllMyBucketsResult xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<s3:Owner><s3:ID>me</s3:ID></s3:Owner><s3:Buckets>\n"
    b"  <s3:Bucket><s3:Name>a&amp;b</s3:Name><s3:CreationDate>x</s3:CreationDate></s3:Bucket>\n"
    b"  <s3:Bucket><s3:Name>hidden</s3:Name><s3:BucketRegion>r</s3:BucketRegion></s3:Bucket>\n"
    b"  <s3:Bucket><s3:Name>photos</s3:Name></s3:Bucket>\n"
    b"</s3:Buckets><s3:ContinuationToken>t</s3:ContinuationToken></s3:ListAllMyBucketsResult>"
)


def sha256_result(body: bytes) -> SigV4Result:
    key = AccessKeySecret("AKAGAAAAAAAAAAAAAAAA", "s" * 40)
    return SigV4Result(
        access_key=key,
        credential=Credential("AKAGAAAAAAAAAAAAAAAA", "20240101", "us-east-1", "s3"),
        signing_key=b"k" * 32,
        timestamp="20240101T000000Z",
        request_time=None,  # type: ignore[arg-type]
        signature="0" * 64,
        payload_mode="sha256",
        content_sha256=hashlib.sha256(body).hexdigest(),
        decoded_content_length=None,
        trailer_names=(),
        signed_headers=("host",),
        presigned=False,
        security_token=None,
    )


def test_list_buckets_keeps_granted_buckets_and_everything_else() -> None:
    filtered = filter_list_buckets(LISTING, {"a&b": "read", "photos": "write", "x": "admin"})
    assert b"hidden" not in filtered
    assert b"<s3:Name>a&amp;b</s3:Name>" in filtered and b"<s3:Name>photos</s3:Name>" in filtered
    assert b"<s3:ContinuationToken>t</s3:ContinuationToken>" in filtered
    assert filtered.startswith(LISTING[: LISTING.index(b"<s3:Bucket>")])
    assert b"<s3:Bucket>" not in filter_list_buckets(LISTING, {})
    assert filter_list_buckets(LISTING, {"photos": "none"}).count(b"<s3:Bucket>") == 0


def test_list_bucket_bodies_are_decoded_or_refused() -> None:
    assert decode_body(gzip.compress(LISTING), "gzip") == LISTING
    assert decode_body(zlib.compress(LISTING), "deflate") == LISTING
    assert decode_body(LISTING, None) == LISTING
    for encoding, body in (("br", LISTING), ("gzip", b"not gzip")):
        with pytest.raises(ListBucketsFilterError):
            decode_body(body, encoding)


def test_refusals_in_s3s_words() -> None:
    limited = as_s3_error(RateLimited(headers={"Retry-After": "7"}))
    assert (limited.s3_code, limited.status) == ("SlowDown", 429)
    assert limited.headers["Retry-After"] == "7"
    forbidden = as_s3_error(Forbidden())
    assert (forbidden.s3_code, forbidden.status) == ("AccessDenied", 403)
    assert as_s3_error(NotReady()).s3_code == "ServiceUnavailable"
    mismatch = XAmzContentSHA256Mismatch()
    assert as_s3_error(mismatch) is mismatch


def test_body_framing() -> None:
    assert has_body("12", None) and has_body(None, "chunked") and has_body(None, "gzip, chunked")
    assert not has_body(None, None) and not has_body("0", None) and not has_body("", None)


@pytest.mark.parametrize("known_length", [True, False])
def test_the_wsgi_reader_holds_back_the_end_until_the_body_passed(known_length: bool) -> None:
    signed = bytes(range(256)) * 1024  # 256 KiB, four read blocks
    sent = signed[:-1] + b"!"
    guard = BodyGuard(sha256_result(signed))
    reader = GuardedInput(io.BytesIO(sent), guard, len(sent) if known_length else None)
    handed = bytearray()
    with pytest.raises(XAmzContentSHA256Mismatch):
        while chunk := reader.read(50_000):
            handed += chunk
    assert len(handed) < len(sent)  # the app never got the last bytes of a bad body
    assert guard.error is not None


def test_the_wsgi_reader_reads_lines_and_whole_bodies() -> None:
    body = b"first line\nsecond line\n" + b"x" * 200_000 + b"\nlast"
    for length in (len(body), None):
        reader = GuardedInput(io.BytesIO(body), BodyGuard(sha256_result(body)), length)
        assert reader.readline() == b"first line\n"
        assert reader.readline(3) == b"sec"
        assert reader.readline() == b"ond line\n"
        assert reader.read() == b"x" * 200_000 + b"\nlast"
        assert reader.read(10) == b""
        whole = GuardedInput(io.BytesIO(body), BodyGuard(sha256_result(body)), length)
        assert b"".join(whole) == body


def test_an_empty_wsgi_body_is_checked_too() -> None:
    reader = GuardedInput(io.BytesIO(b""), BodyGuard(sha256_result(b"signed")), 0)
    with pytest.raises(XAmzContentSHA256Mismatch):
        reader.read()
    assert GuardedInput(io.BytesIO(b""), BodyGuard(sha256_result(b"")), 0).read() == b""


def test_an_unannounced_asgi_body_is_refused() -> None:
    # HTTP/2 needs no framing header for a body: "no body" must still mean none.
    exchange = AsgiS3(S3Pass(sha256_result(b"")), "PUT")
    assert exchange.refusal([(b"host", b"s3.test")]) is None

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"smuggled", "more_body": False}

    async def read_body() -> None:
        await exchange.receive(receive)()

    with pytest.raises(S3Error):
        asyncio.run(read_body())
