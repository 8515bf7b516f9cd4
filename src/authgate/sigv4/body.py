"""Sans-IO checkers for a SigV4 request body, fed as the bytes stream through.

The proxy forwards every byte unchanged (the upstream sees exactly what the client sent)
and feeds the same bytes here; ``feed`` raises as soon as a mismatch is certain, so the
proxy can abort the upstream request before it completes, and ``finish`` raises if the
body ended early or its final digest, signature or trailer is wrong.

Memory stays bounded whatever the body's size: chunk data is hashed as it passes and
never kept; only a chunk header or trailer line is buffered, up to a small limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import zlib
from collections.abc import Callable
from typing import Protocol

try:
    import crc32c
except ImportError:  # optional: without it CRC32C trailers are left to the upstream
    crc32c = None  # type: ignore[assignment]

from authgate.sigv4.errors import (
    BadDigest,
    IncompleteBody,
    MalformedTrailerError,
    S3Error,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from authgate.sigv4.signing import (
    chunk_string_to_sign,
    sign,
    signatures_equal,
    trailer_string_to_sign,
)
from authgate.sigv4.verify import SigV4Result

__all__ = ["AwsChunkedChecker", "BodyChecker", "Sha256Checker", "UnsignedChecker", "body_checker"]

_MAX_LINE = 4096  # a chunk header is ~90 bytes; a trailer line a little more
_MAX_TRAILER_BYTES = 16384
_SIGNED_HEADER = re.compile(rb"([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})")
_UNSIGNED_HEADER = re.compile(rb"[0-9a-fA-F]{1,16}")
_TRAILER_SIGNATURE = "x-amz-trailer-signature"


class BodyChecker(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...


class _Checksum(Protocol):
    def update(self, data: memoryview) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: memoryview) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: memoryview) -> None:
        self._value = crc32c.crc32c(data, value=self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _sha1() -> _Checksum:
    return hashlib.sha1(usedforsecurity=False)


def _sha256() -> _Checksum:
    return hashlib.sha256()


# What S3 verifies itself. Others (x-amz-checksum-crc64nvme) pass through unchecked here
# and are left to the upstream store, which checks every checksum it is sent.
_CHECKSUM_FACTORIES: dict[str, Callable[[], _Checksum]] = {
    "x-amz-checksum-crc32": _Crc32,
    "x-amz-checksum-sha1": _sha1,
    "x-amz-checksum-sha256": _sha256,
}
if crc32c is not None:
    _CHECKSUM_FACTORIES["x-amz-checksum-crc32c"] = _Crc32c


class UnsignedChecker:
    """UNSIGNED-PAYLOAD: the client chose not to protect the body; nothing to check."""

    def feed(self, chunk: bytes) -> None:
        return None

    def finish(self) -> None:
        return None


class Sha256Checker:
    """x-amz-content-sha256 as a hex digest: known wrong only at the last byte."""

    def __init__(self, expected: str) -> None:
        self._expected = expected.lower()
        self._hash = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def finish(self) -> None:
        computed = self._hash.hexdigest()
        if not hmac.compare_digest(computed, self._expected):
            raise XAmzContentSHA256Mismatch(
                extra={
                    "ClientComputedContentSHA256": self._expected,
                    "S3ComputedContentSHA256": computed,
                }
            )


_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class AwsChunkedChecker:
    """``Content-Encoding: aws-chunked`` bodies, signed or not, with or without trailers.

    Signed chunks: ``hex-size;chunk-signature=SIG\\r\\n data \\r\\n`` ... ``0;chunk-signature=
    SIG\\r\\n``, each signature chained from the previous one (the seed is the request's).
    Unsigned: ``hex-size\\r\\n data \\r\\n``. Trailer forms end with ``name:value\\r\\n``
    lines (plus ``x-amz-trailer-signature`` when signed) and an empty line.
    """

    def __init__(self, result: SigV4Result, *, signed: bool, trailer: bool) -> None:
        self._signed = signed
        self._trailer = trailer
        self._key = result.signing_key
        self._timestamp = result.timestamp
        self._scope = result.scope
        self._previous = result.signature
        self._expected_length = result.decoded_content_length
        self._declared = result.trailer_names
        self._checksums: dict[str, _Checksum] = {
            name: _CHECKSUM_FACTORIES[name]()
            for name in result.trailer_names
            if name in _CHECKSUM_FACTORIES
        }
        self._state = _HEADER
        self._line = bytearray()
        self._remaining = 0
        self._crlf = 0
        self._final = False
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._decoded = 0
        self._trailers: list[tuple[str, str]] = []
        self._trailer_bytes = 0
        self._failed: S3Error | None = None

    def feed(self, chunk: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            self._feed(chunk)
        except S3Error as exc:
            self._failed = exc
            raise

    def finish(self) -> None:
        if self._failed is not None:
            raise self._failed
        # Some SDKs end the trailer section without its closing empty line.
        if self._state == _TRAILER and not self._line and self._trailers:
            self._end_trailers()
        if self._state != _DONE:
            self._failed = IncompleteBody()
            raise self._failed
        if self._expected_length is not None and self._decoded != self._expected_length:
            self._failed = IncompleteBody(
                f"The decoded body has {self._decoded} bytes; x-amz-decoded-content-length "
                f"says {self._expected_length}."
            )
            raise self._failed

    def _feed(self, chunk: bytes) -> None:
        data = chunk if isinstance(chunk, bytes | bytearray) else bytes(chunk)
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = view[pos : pos + take]
                if self._signed:
                    self._chunk_hash.update(piece)
                for checksum in self._checksums.values():
                    checksum.update(piece)
                pos += take
                self._remaining -= take
                self._decoded += take
                if self._expected_length is not None and self._decoded > self._expected_length:
                    raise S3InvalidRequest(
                        "The decoded body is longer than x-amz-decoded-content-length."
                    )
                if self._remaining == 0:
                    self._state = _DATA_END
            elif state == _DATA_END:
                if data[pos] != b"\r\n"[self._crlf]:
                    raise S3InvalidRequest(
                        "Malformed aws-chunked body: chunk data not followed by CRLF."
                    )
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._crlf = 0
                    self._end_chunk()
            elif state == _DONE:
                raise S3InvalidRequest("Malformed aws-chunked body: data after the final chunk.")
            else:
                newline = data.find(b"\n", pos)
                stop = end if newline < 0 else newline + 1
                self._line += view[pos:stop]
                pos = stop
                if len(self._line) > _MAX_LINE:
                    raise S3InvalidRequest("Malformed aws-chunked body: line too long.")
                if newline >= 0:
                    line = bytes(self._line)
                    self._line.clear()
                    if not line.endswith(b"\r\n"):
                        raise S3InvalidRequest("Malformed aws-chunked body: bare LF.")
                    if state == _HEADER:
                        self._chunk_header(line[:-2])
                    else:
                        self._trailer_line(line[:-2])

    def _chunk_header(self, line: bytes) -> None:
        if self._signed:
            match = _SIGNED_HEADER.fullmatch(line)
            if match is None:
                raise S3InvalidRequest("Malformed aws-chunked body: bad chunk header.")
            size = int(match.group(1), 16)
            self._chunk_signature = match.group(2).decode("ascii")
            self._chunk_hash = hashlib.sha256()
        else:
            if _UNSIGNED_HEADER.fullmatch(line) is None:
                raise S3InvalidRequest("Malformed aws-chunked body: bad chunk header.")
            size = int(line, 16)
        if size:
            self._remaining = size
            self._state = _DATA
            return
        self._final = True
        if self._trailer:
            self._verify_chunk_signature()
            self._state = _TRAILER
        else:
            self._state = _DATA_END

    def _end_chunk(self) -> None:
        self._verify_chunk_signature()
        self._state = _DONE if self._final else _HEADER

    def _verify_chunk_signature(self) -> None:
        if not self._signed:
            return
        to_sign = chunk_string_to_sign(
            self._timestamp, self._scope, self._previous, self._chunk_hash.hexdigest()
        )
        expected = sign(self._key, to_sign)
        if not signatures_equal(expected, self._chunk_signature):
            raise SignatureDoesNotMatch(
                "The chunk signature we calculated does not match the signature you provided.",
                extra={"StringToSign": to_sign, "SignatureProvided": self._chunk_signature},
            )
        self._previous = expected

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_trailers()
            return
        self._trailer_bytes += len(line)
        if self._trailer_bytes > _MAX_TRAILER_BYTES:
            raise MalformedTrailerError()
        name, colon, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise MalformedTrailerError()
        if self._trailers and self._trailers[-1][0] == _TRAILER_SIGNATURE:
            raise MalformedTrailerError("Trailing headers follow x-amz-trailer-signature.")
        self._trailers.append((name, value.strip()))

    def _end_trailers(self) -> None:
        trailers = self._trailers
        provided: str | None = None
        if trailers and trailers[-1][0] == _TRAILER_SIGNATURE:
            provided = trailers[-1][1]
            trailers = trailers[:-1]
        names = [name for name, _ in trailers]
        if len(set(names)) != len(names) or set(names) != set(self._declared):
            raise MalformedTrailerError(
                "The trailing headers sent are not the ones x-amz-trailer declared."
            )
        if self._signed:
            if provided is None:
                raise MalformedTrailerError("x-amz-trailer-signature is missing.")
            canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
            to_sign = trailer_string_to_sign(
                self._timestamp,
                self._scope,
                self._previous,
                hashlib.sha256(canonical.encode("latin-1")).hexdigest(),
            )
            if not signatures_equal(sign(self._key, to_sign), provided):
                raise SignatureDoesNotMatch(
                    "The trailer signature we calculated does not match the signature you "
                    "provided.",
                    extra={"StringToSign": to_sign, "SignatureProvided": provided},
                )
        elif provided is not None:
            raise MalformedTrailerError("An unsigned body carries x-amz-trailer-signature.")
        for name, value in trailers:
            checksum = self._checksums.get(name)
            if checksum is None:
                continue
            computed = base64.b64encode(checksum.digest()).decode("ascii")
            if not hmac.compare_digest(computed.encode("ascii"), value.encode("latin-1")):
                algorithm = name.removeprefix("x-amz-checksum-").upper()
                raise BadDigest(
                    f"The {algorithm} you specified did not match the calculated checksum."
                )
        self._state = _DONE


def body_checker(result: SigV4Result) -> BodyChecker:
    """The checker for ``result.payload_mode``; feed it every body byte, then finish."""
    mode = result.payload_mode
    if mode == "sha256":
        assert result.content_sha256 is not None
        return Sha256Checker(result.content_sha256)
    if mode == "unsigned":
        return UnsignedChecker()
    return AwsChunkedChecker(
        result,
        signed=mode in ("streaming-signed", "streaming-signed-trailer"),
        trailer=mode in ("streaming-signed-trailer", "streaming-unsigned-trailer"),
    )
