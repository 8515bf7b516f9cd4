"""Body checkers: SHA-256, aws-chunked (signed, signed with trailer, unsigned with
trailer), framing errors, checksums and bounded memory."""

from __future__ import annotations

import hashlib
import importlib.util
import tracemalloc
from collections.abc import Iterable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from authgate.sigv4 import (
    AccessKeySecret,
    BadDigest,
    IncompleteBody,
    MalformedTrailerError,
    S3Error,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    SigV4Result,
    SigV4Verifier,
    XAmzContentSHA256Mismatch,
    body_checker,
    chunk_string_to_sign,
    sign,
)
from tests.sigv4.support import (
    aws_chunked,
    checksum_b64,
    facts_from_botocore,
    fixed_clock,
    lookup_of,
    signed_time,
)

KEY = AccessKeySecret(
    access_key_id="AKIABODYTEST",
    secret="body-secret/+=",
    name="body",
    grants={},
    active=True,
    key_id="k-body",
)
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def streaming_result(
    content_sha256: str, *, decoded_length: int | None, trailer: str | None = None
) -> SigV4Result:
    """A verified request announcing an aws-chunked body (signed by botocore's signer,
    which signs whatever x-amz-content-sha256 says)."""
    headers = {"X-Amz-Content-SHA256": content_sha256, "Content-Encoding": "aws-chunked"}
    if decoded_length is not None:
        headers["X-Amz-Decoded-Content-Length"] = str(decoded_length)
    if trailer is not None:
        headers["X-Amz-Trailer"] = trailer
    request = AWSRequest(method="PUT", url="https://s3.example.test/bkt/obj", headers=headers)
    SigV4Auth(Credentials(KEY.access_key_id, KEY.secret), "s3", "us-east-1").add_auth(request)
    facts, _ = facts_from_botocore(request)
    verifier = SigV4Verifier(lookup_of(KEY), clock=fixed_clock(signed_time(facts)))
    return verifier.verify(facts)


def feed_all(result: SigV4Result, pieces: Iterable[bytes], size: int | None = None) -> None:
    checker = body_checker(result)
    if size is None:
        for piece in pieces:
            checker.feed(piece)
    else:
        body = b"".join(pieces)
        for start in range(0, len(body), size):
            checker.feed(body[start : start + size])
    checker.finish()


DATA = [b"x" * 65536, bytes(range(256)) * 40, b"\r\n0;chunk-signature=" * 3, b"tail"]
TOTAL = sum(len(d) for d in DATA)


# -- plain payloads -------------------------------------------------------------------


def test_unsigned_payload_checks_nothing() -> None:
    result = streaming_result("UNSIGNED-PAYLOAD", decoded_length=None)
    assert result.payload_mode == "unsigned"
    feed_all(result, [b"anything", b"at all"])


def test_sha256_payload() -> None:
    body = b"some body"
    result = streaming_result(hashlib.sha256(body).hexdigest(), decoded_length=None)
    feed_all(result, [body[:3], body[3:]])
    with pytest.raises(XAmzContentSHA256Mismatch):
        feed_all(result, [body, b"!"])
    with pytest.raises(XAmzContentSHA256Mismatch):
        feed_all(result, [body[:-1]])


# -- STREAMING-AWS4-HMAC-SHA256-PAYLOAD -----------------------------------------------


@pytest.mark.parametrize("size", [None, 1, 2, 3, 1000, 65537])
def test_signed_chunks_round_trip(size: int | None) -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=TOTAL)
    assert result.payload_mode == "streaming-signed"
    feed_all(result, aws_chunked(DATA, result=result), size)


def test_signed_chunks_without_decoded_length() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=None)
    feed_all(result, aws_chunked(DATA, result=result))


def _signed_body(result: SigV4Result) -> bytes:
    return b"".join(aws_chunked(DATA, result=result))


@pytest.mark.parametrize("offset", [100, 70000, 76000])
def test_signed_chunks_flipped_byte(offset: int) -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=TOTAL)
    body = bytearray(_signed_body(result))
    body[offset] ^= 0x01
    with pytest.raises(S3Error) as info:
        feed_all(result, [bytes(body)], 997)
    assert info.value.status in (400, 403)


def test_signed_chunks_reordered_refused() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=8)
    pieces = list(aws_chunked([b"aaaa", b"bbbb"], result=result))
    # header1, data1, header2, data2, final header, final CRLF
    swapped = [pieces[2], pieces[3], pieces[0], pieces[1], *pieces[4:]]
    with pytest.raises(SignatureDoesNotMatch):
        feed_all(result, swapped)


def test_signed_chunks_from_another_request_refused() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=4)
    other = streaming_result(STREAMING_SIGNED, decoded_length=4)
    forged = SigV4Result(**{**_fields(result), "signature": "0" * 64})
    with pytest.raises(SignatureDoesNotMatch):
        feed_all(other, aws_chunked([b"data"], result=forged))


def _fields(result: SigV4Result) -> dict[str, Any]:
    return {name: getattr(result, name) for name in SigV4Result.__dataclass_fields__}


def test_truncated_body_incomplete() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=TOTAL)
    body = _signed_body(result)
    for cut in (0, 10, 90, 5000, len(body) - 2, len(body) - 1):
        with pytest.raises(IncompleteBody):
            feed_all(result, [body[:cut]])


def test_decoded_length_mismatch() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=TOTAL + 1)
    with pytest.raises(IncompleteBody):
        feed_all(result, aws_chunked(DATA, result=result))
    result = streaming_result(STREAMING_SIGNED, decoded_length=TOTAL - 1)
    with pytest.raises(S3InvalidRequest):
        feed_all(result, aws_chunked(DATA, result=result))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b + b"extra",
        lambda b: b.replace(b";chunk-signature=", b";chunk-signatur=", 1),
        lambda b: b.replace(b"\r\n", b"\n", 1),
        lambda b: b"zz" + b[b.index(b";") :],
        lambda b: b"1" * 5000 + b,
    ],
    ids=["trailing-data", "bad-extension", "bare-lf", "bad-size", "long-line"],
)
def test_framing_errors(mangle: Any) -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=None)
    body = mangle(_signed_body(result))
    with pytest.raises(S3InvalidRequest) as info:
        feed_all(result, [body])
    assert info.value.status == 400


def test_missing_crlf_after_chunk_data() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=None)
    to_sign = chunk_string_to_sign(
        result.timestamp, result.scope, result.signature, hashlib.sha256(b"abc").hexdigest()
    )
    header = f"3;chunk-signature={sign(result.signing_key, to_sign)}\r\n".encode()
    with pytest.raises(S3InvalidRequest):
        feed_all(result, [header + b"abcX\r\n"])


def test_failure_is_sticky() -> None:
    result = streaming_result(STREAMING_SIGNED, decoded_length=None)
    checker = body_checker(result)
    with pytest.raises(S3InvalidRequest):
        checker.feed(b"not-hex\r\n")
    with pytest.raises(S3InvalidRequest):
        checker.feed(b"")
    with pytest.raises(S3InvalidRequest):
        checker.finish()


# -- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER ---------------------------------------

HAVE_CRC32C = importlib.util.find_spec("crc32c") is not None
NEEDS_CRC32C = pytest.mark.skipif(not HAVE_CRC32C, reason="the crc32c package is not installed")
CHECKSUMS = [
    "x-amz-checksum-crc32",
    pytest.param("x-amz-checksum-crc32c", marks=NEEDS_CRC32C),
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
]


@pytest.mark.parametrize("name", CHECKSUMS)
@pytest.mark.parametrize("size", [None, 1, 4097])
def test_signed_trailer_round_trip(name: str, size: int | None) -> None:
    result = streaming_result(STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    assert result.payload_mode == "streaming-signed-trailer"
    assert result.trailer_names == (name,)
    trailers = [(name, checksum_b64(name, b"".join(DATA)))]
    feed_all(result, aws_chunked(DATA, result=result, trailers=trailers), size)


@pytest.mark.parametrize("name", CHECKSUMS)
def test_signed_trailer_wrong_checksum(name: str) -> None:
    result = streaming_result(STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    trailers = [(name, checksum_b64(name, b"other data"))]
    with pytest.raises(BadDigest):
        feed_all(result, aws_chunked(DATA, result=result, trailers=trailers))


def test_signed_trailer_bad_signature() -> None:
    name = "x-amz-checksum-sha256"
    result = streaming_result(STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    trailers = [(name, checksum_b64(name, b"".join(DATA)))]
    body = b"".join(aws_chunked(DATA, result=result, trailers=trailers))
    marker = b"x-amz-trailer-signature:"
    at = body.index(marker) + len(marker)
    body = body[:at] + (b"0" if body[at : at + 1] != b"0" else b"1") + body[at + 1 :]
    with pytest.raises(SignatureDoesNotMatch):
        feed_all(result, [body])


def test_signed_trailer_missing_signature() -> None:
    name = "x-amz-checksum-crc32"
    result = streaming_result(STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    body = b"".join(aws_chunked(DATA, result=result, trailers=[(name, "AAAAAA==")]))
    start = body.index(b"x-amz-trailer-signature:")
    body = body[:start] + b"\r\n"
    with pytest.raises(MalformedTrailerError):
        feed_all(result, [body])


def test_signed_trailer_without_final_empty_line_accepted() -> None:
    name = "x-amz-checksum-sha256"
    result = streaming_result(STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    trailers = [(name, checksum_b64(name, b"".join(DATA)))]
    body = b"".join(aws_chunked(DATA, result=result, trailers=trailers))
    assert body.endswith(b"\r\n\r\n")
    feed_all(result, [body[:-2]])


def test_undeclared_trailer_refused() -> None:
    result = streaming_result(
        STREAMING_SIGNED_TRAILER, decoded_length=TOTAL, trailer="x-amz-checksum-crc32"
    )
    trailers = [("x-amz-checksum-sha1", checksum_b64("x-amz-checksum-sha1", b"".join(DATA)))]
    with pytest.raises(MalformedTrailerError):
        feed_all(result, aws_chunked(DATA, result=result, trailers=trailers))


# -- STREAMING-UNSIGNED-PAYLOAD-TRAILER -----------------------------------------------


@pytest.mark.parametrize("name", CHECKSUMS)
@pytest.mark.parametrize("size", [None, 1, 333])
def test_unsigned_trailer_round_trip(name: str, size: int | None) -> None:
    result = streaming_result(STREAMING_UNSIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    assert result.payload_mode == "streaming-unsigned-trailer"
    trailers = [(name, checksum_b64(name, b"".join(DATA)))]
    feed_all(result, aws_chunked(DATA, trailers=trailers), size)


@pytest.mark.parametrize("name", CHECKSUMS)
def test_unsigned_trailer_wrong_checksum(name: str) -> None:
    result = streaming_result(STREAMING_UNSIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    data = [*DATA[:-1], b"tall"]
    trailers = [(name, checksum_b64(name, b"".join(DATA)))]
    with pytest.raises(BadDigest):
        feed_all(result, aws_chunked(data, trailers=trailers))


def test_unsigned_trailer_refuses_signed_framing() -> None:
    result = streaming_result(
        STREAMING_UNSIGNED_TRAILER, decoded_length=TOTAL, trailer="x-amz-checksum-crc32"
    )
    with pytest.raises(S3InvalidRequest):
        feed_all(result, aws_chunked(DATA, result=result, trailers=[]))


def test_unsigned_trailer_unverifiable_checksum_passes_to_upstream() -> None:
    name = "x-amz-checksum-crc64nvme"
    result = streaming_result(STREAMING_UNSIGNED_TRAILER, decoded_length=TOTAL, trailer=name)
    feed_all(result, aws_chunked(DATA, trailers=[(name, "AAAAAAAAAAA=")]))


# -- memory ------------------------------------------------------------------------------


def test_memory_stays_bounded_for_a_gigabyte() -> None:
    """1 GiB of signed 1 MiB chunks: the checker holds a line and two hashes, not data."""
    result = streaming_result(STREAMING_SIGNED, decoded_length=1 << 30)
    block = b"m" * (1 << 20)
    block_hash = hashlib.sha256(block).hexdigest()
    checker = body_checker(result)
    previous = result.signature
    tracemalloc.start()
    try:
        for _ in range(1024):
            to_sign = chunk_string_to_sign(result.timestamp, result.scope, previous, block_hash)
            previous = sign(result.signing_key, to_sign)
            checker.feed(f"100000;chunk-signature={previous}\r\n".encode())
            checker.feed(block)
            checker.feed(b"\r\n")
        final = chunk_string_to_sign(
            result.timestamp, result.scope, previous, hashlib.sha256(b"").hexdigest()
        )
        checker.feed(f"0;chunk-signature={sign(result.signing_key, final)}\r\n\r\n".encode())
        checker.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@NEEDS_CRC32C
def test_one_huge_chunk_is_never_buffered() -> None:
    total = 256 << 20
    name = "x-amz-checksum-crc32c"
    result = streaming_result(STREAMING_UNSIGNED_TRAILER, decoded_length=total, trailer=name)
    block = b"q" * (1 << 20)
    import crc32c

    crc = 0
    for _ in range(256):
        crc = crc32c.crc32c(block, value=crc)
    import base64

    trailer = base64.b64encode(crc.to_bytes(4, "big"))
    checker = body_checker(result)
    tracemalloc.start()
    try:
        checker.feed(f"{total:x}\r\n".encode())
        for _ in range(256):
            checker.feed(block)
        checker.feed(b"\r\n0\r\nx-amz-checksum-crc32c:" + trailer + b"\r\n\r\n")
        checker.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
