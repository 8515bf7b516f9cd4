"""Every case of the shared SigV4 vectors: aws4_testsuite, aws-c-auth v4 and the S3
streaming example. Canonical request, string to sign and signature are reproduced byte
for byte, each signed request is accepted, and a one-digit change in its signature is not.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authgate.facts import RequestFacts
from authgate.sigv4 import (
    AccessKeySecret,
    SignatureDoesNotMatch,
    SigV4Verifier,
    body_checker,
    chunk_string_to_sign,
    derive_signing_key,
    parse_authorization,
    sign,
    string_to_sign,
    trailer_string_to_sign,
)
from authgate.sigv4.canonical import build_canonical_request, split_query
from authgate.sigv4.verify import SigV4Result
from tests.sigv4.support import (
    SUITE_KEY,
    SUITE_TIME,
    VECTORS,
    fixed_clock,
    flip_hex,
    lookup_of,
    parse_raw_request,
    replace_header,
    with_fields,
)

SUITE = VECTORS / "aws4_testsuite"
CRT = VECTORS / "aws-c-auth" / "v4"
STREAMING = VECTORS / "s3-streaming" / "sigv4-streaming-example.json"

SUITE_CASES = sorted(p.parent for p in SUITE.rglob("*.req"))
CRT_CASES = sorted(p.parent for p in CRT.glob("*/context.json"))

# This case's .sreq carries a Signature that is not the one in its .authz (which is the
# value botocore and aws-c-auth both compute, see aws-c-auth get-vanilla-with-session-token
# header-signature.txt): the shipped signed request is inconsistent, so it is built from
# .req + the session token + .authz instead, and the shipped one must be refused.
SREQ_INCONSISTENT = {"get-vanilla-with-session-token"}
# The readme of post-sts-token: the token header is added after signing.
TOKEN_ADDED_AFTER_SIGNING = {"post-sts-header-after"}


def test_vector_counts() -> None:
    assert VECTORS.is_dir(), f"SigV4 vectors missing at {VECTORS}"
    assert len(SUITE_CASES) == 34
    assert len(CRT_CASES) == 38


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _payload_hash(facts: RequestFacts, body: bytes) -> str:
    return facts.header("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()


def _suite_verifier(name: str) -> SigV4Verifier:
    return SigV4Verifier(
        lookup_of(SUITE_KEY),
        service="service",
        normalize_path=True,
        clock=fixed_clock(SUITE_TIME),
        allow_unsigned_session_token=name in TOKEN_ADDED_AFTER_SIGNING,
    )


def _suite_signed_request(case: Path) -> tuple[RequestFacts, bytes]:
    name = case.name
    if name not in SREQ_INCONSISTENT:
        return parse_raw_request(_read(case / f"{name}.sreq"))
    facts, body = parse_raw_request(_read(case / f"{name}.req"))
    creq = (case / f"{name}.creq").read_text()
    token = next(
        line.partition(":")[2]
        for line in creq.splitlines()
        if line.startswith("x-amz-security-token:")
    )
    facts = replace_header(facts, "x-amz-security-token", token)
    authz = (case / f"{name}.authz").read_text().strip()
    return replace_header(facts, "authorization", authz), body


@pytest.mark.parametrize("case", SUITE_CASES, ids=lambda p: p.name)
def test_aws4_testsuite_canonical_request_string_to_sign_signature(case: Path) -> None:
    name = case.name
    facts, body = _suite_signed_request(case)
    authz = (case / f"{name}.authz").read_text().strip()
    auth = parse_authorization(authz)

    creq = build_canonical_request(
        facts, auth.signed_headers, _payload_hash(facts, body), normalize=True
    )
    assert creq.encode("latin-1") == _read(case / f"{name}.creq")

    sts = string_to_sign("20150830T123600Z", auth.credential.scope, creq.encode("latin-1"))
    assert sts == (case / f"{name}.sts").read_text()

    key = derive_signing_key(SUITE_KEY.secret, "20150830", "us-east-1", "service")
    assert sign(key, sts) == auth.signature


@pytest.mark.parametrize("case", SUITE_CASES, ids=lambda p: p.name)
def test_aws4_testsuite_signed_request_accepted(case: Path) -> None:
    facts, body = _suite_signed_request(case)
    verifier = _suite_verifier(case.name)

    result = verifier.verify(facts, body=body)
    assert result.access_key is SUITE_KEY
    assert result.timestamp == "20150830T123600Z"
    assert result.scope == "20150830/us-east-1/service/aws4_request"
    assert result.payload_mode == "sha256"
    assert result.content_sha256 == hashlib.sha256(body).hexdigest()

    auth = parse_authorization(facts.header("authorization") or "")
    for index in (0, 63):
        bad = flip_hex(auth.signature, index)
        tampered = replace_header(
            facts,
            "authorization",
            (facts.header("authorization") or "").replace(auth.signature, bad),
        )
        with pytest.raises(SignatureDoesNotMatch):
            verifier.verify(tampered, body=body)


def test_aws4_testsuite_inconsistent_sreq_is_refused() -> None:
    case = SUITE / "get-vanilla-with-session-token"
    facts, body = parse_raw_request(_read(case / "get-vanilla-with-session-token.sreq"))
    with pytest.raises(SignatureDoesNotMatch):
        _suite_verifier(case.name).verify(facts, body=body)


def test_aws4_testsuite_body_is_part_of_the_signature() -> None:
    case = SUITE / "post-x-www-form-urlencoded"
    facts, body = parse_raw_request(_read(case / "post-x-www-form-urlencoded.sreq"))
    assert body
    verifier = _suite_verifier(case.name)
    verifier.verify(facts, body=body)
    with pytest.raises(SignatureDoesNotMatch):
        verifier.verify(facts, body=body + b"x")
    # Without the body the request is taken to have none, which its signature denies.
    with pytest.raises(SignatureDoesNotMatch):
        verifier.verify(facts)


def _crt_context(case: Path) -> dict[str, object]:
    context: dict[str, object] = json.loads((case / "context.json").read_text())
    return context


def _crt_verifier(case: Path) -> SigV4Verifier:
    context = _crt_context(case)
    creds = context["credentials"]
    assert isinstance(creds, dict)
    key = AccessKeySecret(
        access_key_id=creds["access_key_id"],
        secret=creds["secret_access_key"],
        name="crt",
        grants={},
        active=True,
        key_id="k-crt",
    )
    return SigV4Verifier(
        lookup_of(key),
        region=str(context["region"]),
        service=str(context["service"]),
        normalize_path=bool(context["normalize"]),
        clock=fixed_clock(datetime.fromisoformat(str(context["timestamp"]))),
        allow_unsigned_session_token=bool(context.get("omit_session_token", False)),
    )


def _crt_signed(case: Path, form: str) -> tuple[RequestFacts, bytes, tuple[str, ...], str]:
    facts, body = parse_raw_request(_read(case / f"{form}-signed-request.txt"))
    if form == "header":
        auth = parse_authorization(facts.header("authorization") or "")
        return facts, body, auth.signed_headers, auth.signature
    params = dict(split_query(facts.query_string))
    signed = tuple(params["X-Amz-SignedHeaders"].replace("%3B", ";").split(";"))
    return facts, body, signed, params["X-Amz-Signature"]


@pytest.mark.parametrize("form", ["header", "query"])
@pytest.mark.parametrize("case", CRT_CASES, ids=lambda p: p.name)
def test_aws_c_auth_canonical_request_string_to_sign_signature(case: Path, form: str) -> None:
    context = _crt_context(case)
    facts, body, signed_headers, signature = _crt_signed(case, form)
    exclude = ["X-Amz-Signature"]
    if context.get("omit_session_token"):
        exclude.append("X-Amz-Security-Token")

    creq = build_canonical_request(
        facts,
        signed_headers,
        _payload_hash(facts, body),
        normalize=bool(context["normalize"]),
        exclude_query=exclude if form == "query" else (),
    )
    assert creq.encode("latin-1") == _read(case / f"{form}-canonical-request.txt")

    scope = f"20150830/{context['region']}/{context['service']}/aws4_request"
    sts = string_to_sign("20150830T123600Z", scope, creq.encode("latin-1"))
    assert sts == (case / f"{form}-string-to-sign.txt").read_text()

    key = derive_signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service"
    )
    assert sign(key, sts) == signature == (case / f"{form}-signature.txt").read_text().strip()


@pytest.mark.parametrize("form", ["header", "query"])
@pytest.mark.parametrize("case", CRT_CASES, ids=lambda p: p.name)
def test_aws_c_auth_signed_request_accepted(case: Path, form: str) -> None:
    facts, body, _signed, signature = _crt_signed(case, form)
    verifier = _crt_verifier(case)

    result = verifier.verify(facts, body=body)
    assert result.signature == signature
    assert result.presigned is (form == "query")

    bad = flip_hex(signature, 7)
    if form == "header":
        auth = facts.header("authorization") or ""
        tampered = replace_header(facts, "authorization", auth.replace(signature, bad))
    else:
        tampered = with_fields(facts, query_string=facts.query_string.replace(signature, bad))
    with pytest.raises(SignatureDoesNotMatch):
        verifier.verify(tampered, body=body)


# -- S3 streaming (aws-chunked) example ------------------------------------------------

EXAMPLE = json.loads(STREAMING.read_text()) if STREAMING.exists() else {}
EXAMPLE_TIME = datetime(2013, 5, 24, 0, 0, 0, tzinfo=UTC)
EXAMPLE_KEY = AccessKeySecret(
    access_key_id=EXAMPLE.get("access_key_id", ""),
    secret=EXAMPLE.get("secret_access_key", ""),
    name="docs",
    grants={"examplebucket": "write"},
    active=True,
    key_id="k-docs",
)


def _example_facts() -> RequestFacts:
    headers = [(name, value) for name, value in EXAMPLE["headers"].items()]
    headers.append(("x-amz-date", EXAMPLE["date"]))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={EXAMPLE['access_key_id']}/20130524/us-east-1/s3/"
        f"aws4_request,SignedHeaders={EXAMPLE['signed_headers']},"
        f"Signature={EXAMPLE['seed_signature']}"
    )
    headers.append(("authorization", authorization))
    return RequestFacts(
        method=EXAMPLE["method"],
        path=EXAMPLE["path"],
        headers=tuple(headers),
        raw_path=EXAMPLE["path"],
    )


def _example_verifier() -> SigV4Verifier:
    return SigV4Verifier(lookup_of(EXAMPLE_KEY), clock=fixed_clock(EXAMPLE_TIME))


def _example_body(signatures: list[str], final: bytes = b"\r\n") -> bytes:
    sizes = (65536, 1024, 0)
    parts = []
    for size, signature in zip(sizes, signatures, strict=True):
        parts.append(f"{size:x};chunk-signature={signature}\r\n".encode())
        if size:
            parts.append(b"a" * size + b"\r\n")
    return b"".join(parts) + final


def test_streaming_example_seed_and_chunk_signatures() -> None:
    result = _example_verifier().verify(_example_facts())
    assert result.signature == EXAMPLE["seed_signature"]
    assert result.payload_mode == "streaming-signed"
    assert result.decoded_content_length == 66560

    previous = result.signature
    for size, expected in zip((65536, 1024, 0), EXAMPLE["chunk_signatures"], strict=True):
        to_sign = chunk_string_to_sign(
            result.timestamp, result.scope, previous, hashlib.sha256(b"a" * size).hexdigest()
        )
        previous = sign(result.signing_key, to_sign)
        assert previous == expected


@pytest.mark.parametrize("piece", [1, 7, 8192, 65536, 70000, None])
def test_streaming_example_body_accepted(piece: int | None) -> None:
    result = _example_verifier().verify(_example_facts())
    body = _example_body(EXAMPLE["chunk_signatures"])
    assert len(body) == int(EXAMPLE["headers"]["content-length"])
    checker = body_checker(result)
    step = piece or len(body)
    for start in range(0, len(body), step):
        checker.feed(body[start : start + step])
    checker.finish()


def test_streaming_example_random_splits() -> None:
    result = _example_verifier().verify(_example_facts())
    body = _example_body(EXAMPLE["chunk_signatures"])
    rng = random.Random(4)
    for _ in range(20):
        checker = body_checker(result)
        pos = 0
        while pos < len(body):
            size = rng.randint(1, 5000)
            checker.feed(body[pos : pos + size])
            pos += size
        checker.finish()


@pytest.mark.parametrize("offset", [200, 65600, 66600])
def test_streaming_example_flipped_data_byte_refused(offset: int) -> None:
    result = _example_verifier().verify(_example_facts())
    body = bytearray(_example_body(EXAMPLE["chunk_signatures"]))
    assert body[offset : offset + 1] == b"a"
    body[offset] = ord("b")
    checker = body_checker(result)
    with pytest.raises(SignatureDoesNotMatch):
        checker.feed(bytes(body))
        checker.finish()


def test_streaming_example_refused_as_soon_as_the_bad_chunk_ends() -> None:
    result = _example_verifier().verify(_example_facts())
    body = bytearray(_example_body(EXAMPLE["chunk_signatures"]))
    body[100] = ord("b")
    first_chunk_end = body.index(b"\r\n", 90) + 2 + 65536 + 2
    checker = body_checker(result)
    with pytest.raises(SignatureDoesNotMatch):
        checker.feed(bytes(body[:first_chunk_end]))


def test_streaming_example_trailer_signature() -> None:
    """The trailer variant's value checks out: it chains off the example's final chunk
    signature, over ``first:1st\\nsecond:2nd\\nthird:3rd\\n`` (as in the CRT signers' own
    trailing-headers tests), so it is checked against the published value directly."""
    variant = EXAMPLE["trailer_variant"]
    result = _example_verifier().verify(_example_facts())
    canonical = "".join(f"{name}:{value}\n" for name, value in variant["trailers"].items())
    to_sign = trailer_string_to_sign(
        result.timestamp,
        result.scope,
        EXAMPLE["chunk_signatures"][-1],
        hashlib.sha256(canonical.encode()).hexdigest(),
    )
    assert sign(result.signing_key, to_sign) == variant["trailing_headers_signature"]


def _trailer_result() -> SigV4Result:
    # The published trailer value chains off the non-trailer example's seed, so the
    # checker is given that seed with the signed-trailer mode and declared trailers.
    variant = EXAMPLE["trailer_variant"]
    result = _example_verifier().verify(_example_facts())
    return SigV4Result(
        access_key=result.access_key,
        credential=result.credential,
        signing_key=result.signing_key,
        timestamp=result.timestamp,
        request_time=result.request_time,
        signature=result.signature,
        payload_mode="streaming-signed-trailer",
        content_sha256=None,
        decoded_content_length=66560,
        trailer_names=tuple(variant["x-amz-trailer"].split(",")),
        signed_headers=result.signed_headers,
        presigned=False,
        security_token=None,
    )


def _trailer_body(trailer_signature: str) -> bytes:
    variant = EXAMPLE["trailer_variant"]
    trailers = "".join(f"{name}:{value}\r\n" for name, value in variant["trailers"].items())
    final = f"{trailers}x-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    return _example_body(EXAMPLE["chunk_signatures"], final=final)


def test_streaming_example_trailer_body_accepted() -> None:
    signature = EXAMPLE["trailer_variant"]["trailing_headers_signature"]
    checker = body_checker(_trailer_result())
    body = _trailer_body(signature)
    for start in range(0, len(body), 4096):
        checker.feed(body[start : start + 4096])
    checker.finish()


def test_streaming_example_trailer_body_with_bad_trailer_signature_refused() -> None:
    signature = flip_hex(EXAMPLE["trailer_variant"]["trailing_headers_signature"], 3)
    checker = body_checker(_trailer_result())
    with pytest.raises(SignatureDoesNotMatch):
        checker.feed(_trailer_body(signature))
        checker.finish()
