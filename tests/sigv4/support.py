"""Helpers for the SigV4 tests: raw HTTP requests to facts, botocore requests to facts,
and a small aws-chunked encoder built on authgate's own signing primitives."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.credentials import Credentials

from authgate.facts import RequestFacts
from authgate.sigv4 import (
    AccessKeySecret,
    SigV4Result,
    SigV4Verifier,
    chunk_string_to_sign,
    sign,
    trailer_string_to_sign,
)
from authgate.sigv4.parse import parse_amz_date

# AWS's SigV4 test vectors (Apache-2.0; PROVENANCE.txt says where each suite comes from),
# kept in the repository so that a clean clone tests against them.
VECTORS = Path(__file__).resolve().parent / "vectors"

SUITE_KEY = AccessKeySecret(
    access_key_id="AKIDEXAMPLE",
    secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    name="suite",
    grants={},
    active=True,
    key_id="k-suite",
)
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)


KEY = AccessKeySecret(
    access_key_id="AKIAAUTHGATETEST0001",
    secret="kX9/+a=b~c d€ secret with spaces and unicode",
    name="test key",
    grants={"bkt": "write"},
    active=True,
    key_id="k-1",
)
INACTIVE = AccessKeySecret(
    access_key_id="AKIAAUTHGATEINACTIVE",
    secret="inactive-secret",
    name="old",
    grants={},
    active=False,
    key_id="k-2",
)
CREDS = Credentials(KEY.access_key_id, KEY.secret)
ENDPOINT = "https://s3.example.test"


def signed_time(facts: RequestFacts) -> datetime:
    stamp = facts.header("x-amz-date")
    if stamp is None:
        stamp = dict(pair.split("=", 1) for pair in facts.query_string.split("&") if "=" in pair)[
            "X-Amz-Date"
        ]
    moment = parse_amz_date(stamp)
    assert moment is not None
    return moment


def verifier_at(facts: RequestFacts, delta: timedelta = timedelta(0), **kw: Any) -> SigV4Verifier:
    return SigV4Verifier(
        lookup_of(KEY, INACTIVE), clock=fixed_clock(signed_time(facts) + delta), **kw
    )


def lookup_of(*keys: AccessKeySecret) -> Callable[[str], AccessKeySecret | None]:
    table = {key.access_key_id: key for key in keys}
    return table.get


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def parse_raw_request(data: bytes) -> tuple[RequestFacts, bytes]:
    """A request as written in the test-suite files (LF line ends, obs-fold allowed)."""
    head, sep, body = data.partition(b"\n\n")
    if not sep:
        head, body = data.rstrip(b"\n"), b""
    lines = head.split(b"\n")
    request_line = lines[0].decode("latin-1")
    method, _, rest = request_line.partition(" ")
    target, _, _version = rest.rpartition(" ")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        text = line.rstrip(b"\r").decode("latin-1")
        if text[:1] in (" ", "\t") and headers:
            # obs-fold: a continuation joins the previous value with a space (RFC 7230).
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {text}")
            continue
        name, _, value = text.partition(":")
        headers.append((name.strip().lower(), value.strip(" \t")))
    raw_path, _, query = target.partition("?")
    facts = RequestFacts(
        method=method,
        path=unquote(raw_path, encoding="latin-1"),
        headers=tuple(headers),
        query_string=query,
        raw_path=raw_path,
    )
    return facts, body


def replace_header(facts: RequestFacts, name: str, value: str | None) -> RequestFacts:
    """``facts`` with every ``name`` header dropped and, unless None, one set to ``value``."""
    headers = tuple((n, v) for n, v in facts.headers if n != name)
    if value is not None:
        headers += ((name, value),)
    return RequestFacts(
        method=facts.method,
        path=facts.path,
        headers=headers,
        query_string=facts.query_string,
        raw_path=facts.raw_path,
    )


def with_fields(facts: RequestFacts, **changes: str) -> RequestFacts:
    values = {
        "method": facts.method,
        "path": facts.path,
        "headers": facts.headers,
        "query_string": facts.query_string,
        "raw_path": facts.raw_path,
    }
    values.update(changes)
    return RequestFacts(**values)  # type: ignore[arg-type]


def flip_hex(signature: str, index: int = 0) -> str:
    """The signature with one hex digit changed."""
    char = signature[index]
    other = "0" if char != "0" else "1"
    return signature[:index] + other + signature[index + 1 :]


def facts_from_botocore(request: object, *, body: bool = False) -> tuple[RequestFacts, bytes]:
    """A signed ``botocore.awsrequest.AWSRequest`` as the server would see it."""
    url = request.url  # type: ignore[attr-defined]
    parts = urlsplit(url)
    headers: list[tuple[str, str]] = []
    names = set()
    for name, value in request.headers.items():  # type: ignore[attr-defined]
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        headers.append((name.lower(), text.encode("utf-8").decode("latin-1")))
        names.add(name.lower())
    if "host" not in names:
        headers.insert(0, ("host", parts.netloc))
    raw_body = request.body or b""  # type: ignore[attr-defined]
    if hasattr(raw_body, "read"):
        raw_body = raw_body.read()
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    facts = RequestFacts(
        method=request.method,  # type: ignore[attr-defined]
        path=unquote(parts.path),
        headers=tuple(headers),
        query_string=parts.query,
        raw_path=parts.path,
    )
    return facts, bytes(raw_body)


def checksum_b64(name: str, data: bytes) -> str:
    if name == "x-amz-checksum-crc32":
        digest = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif name == "x-amz-checksum-crc32c":
        import crc32c

        digest = crc32c.crc32c(data).to_bytes(4, "big")
    elif name == "x-amz-checksum-sha1":
        digest = hashlib.sha1(data).digest()
    elif name == "x-amz-checksum-sha256":
        digest = hashlib.sha256(data).digest()
    else:
        raise ValueError(name)
    return base64.b64encode(digest).decode("ascii")


def aws_chunked(
    chunks: Iterable[bytes],
    *,
    result: SigV4Result | None = None,
    trailers: Iterable[tuple[str, str]] | None = None,
) -> Iterator[bytes]:
    """Encode ``chunks`` as aws-chunked: signed when ``result`` is given (its key, time,
    scope and seed), with ``trailers`` (signed too when ``result`` is given)."""
    trailer_list = list(trailers) if trailers is not None else None
    previous = result.signature if result is not None else ""
    for data in [*chunks, b""]:
        if result is not None:
            to_sign = chunk_string_to_sign(
                result.timestamp, result.scope, previous, hashlib.sha256(data).hexdigest()
            )
            previous = sign(result.signing_key, to_sign)
            yield f"{len(data):x};chunk-signature={previous}\r\n".encode()
        else:
            yield f"{len(data):x}\r\n".encode()
        if data or trailer_list is None:
            yield data + b"\r\n"
    if trailer_list is None:
        return
    canonical = "".join(f"{name}:{value}\n" for name, value in trailer_list)
    yield canonical.replace("\n", "\r\n").encode("latin-1")
    if result is not None:
        to_sign = trailer_string_to_sign(
            result.timestamp,
            result.scope,
            previous,
            hashlib.sha256(canonical.encode("latin-1")).hexdigest(),
        )
        yield f"x-amz-trailer-signature:{sign(result.signing_key, to_sign)}\r\n".encode()
    yield b"\r\n"
