"""The pieces on their own: canonical forms, parsing, the key cache, errors, exports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import authgate.sigv4 as sigv4
from authgate.errors import AuthgateError, ConfigurationError
from authgate.facts import RequestFacts
from authgate.sigv4 import (
    AccessKeySecret,
    AuthorizationHeaderMalformed,
    S3Error,
    SignatureDoesNotMatch,
    SigningKeyCache,
    SigV4Verifier,
    canonical_query,
    canonical_uri,
    derive_signing_key,
    is_sigv4,
    parse_authorization,
    render_s3_error,
    split_query,
)
from authgate.sigv4.canonical import canonical_header_value, remove_dot_segments
from authgate.sigv4.parse import parse_amz_date, parse_http_date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/bkt/a%20b", "/bkt/a%20b"),
        ("/bkt/a b", "/bkt/a%20b"),
        ("/bkt/a%2Fb", "/bkt/a%2Fb"),  # an encoded slash stays one
        ("/bkt/a%2fb", "/bkt/a%2fb"),  # escapes are signed as sent
        ("/bkt//a/./b/../c", "/bkt//a/./b/../c"),  # S3 never normalises
        ("/bkt/100%", "/bkt/100%25"),
        ("/bkt/%zz", "/bkt/%25zz"),
        ("/bkt/\xe1\x88\xb4", "/bkt/%E1%88%B4"),
        ("/bkt/~-_.", "/bkt/~-_."),
        ("", "/"),
    ],
)
def test_canonical_uri_s3(raw: str, expected: str) -> None:
    assert canonical_uri(raw, normalize=False) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a/b/../c/./d", "/a/c/d"),
        ("//a//b//", "/a/b/"),
        ("/a%20b", "/a%2520b"),  # non-S3 services sign the path encoded twice
        ("/..", "/"),
        ("", "/"),
    ],
)
def test_canonical_uri_normalized(raw: str, expected: str) -> None:
    assert canonical_uri(raw, normalize=True) == expected


def test_remove_dot_segments_keeps_relative_paths_relative() -> None:
    assert remove_dot_segments("a/./b/") == "a/b/"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1&a=10", "a=1&a=10&a=2"),
        ("uploads", "uploads="),
        ("a=%7E&b=~", "a=~&b=~"),
        ("a=%2b&b=+", "a=%2B&b=%2B"),  # '+' is a plus, not a space
        ("k=a%20b&k2=a b", "k=a%20b&k2=a%20b"),
        ("%E1%88%B4=1&Z=2", "%E1%88%B4=1&Z=2"),  # sorted by encoded key
        ("a=1&&b=2&", "a=1&b=2"),
        ("a==b", "a=%3Db"),
    ],
)
def test_canonical_query(query: str, expected: str) -> None:
    assert canonical_query(split_query(query)) == expected


def test_canonical_query_excludes_signature() -> None:
    pairs = split_query("X-Amz-Signature=abc&b=1")
    assert canonical_query(pairs, exclude=("X-Amz-Signature",)) == "b=1"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["  a   b  "], "a b"),
        (['"a   b   c"'], '"a b c"'),
        (["v2", "v2", "v1"], "v2,v2,v1"),
        (["a\tb"], "a b"),
        ([], ""),
    ],
)
def test_canonical_header_value(values: list[str], expected: str) -> None:
    assert canonical_header_value(values) == expected


def test_parse_authorization_without_spaces_and_in_any_order() -> None:
    sig = "a" * 64
    auth = parse_authorization(
        f"AWS4-HMAC-SHA256 Signature={sig},SignedHeaders=host;x-amz-date,"
        "Credential=AKID/20130524/us-east-1/s3/aws4_request"
    )
    assert auth.signature == sig
    assert auth.signed_headers == ("host", "x-amz-date")
    assert auth.credential.scope == "20130524/us-east-1/s3/aws4_request"


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA1 Credential=a/20130524/r/s/aws4_request, SignedHeaders=host, Signature=",
        "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4_request, SignedHeaders=host;host, "
        "Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20130524/r/s, SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=/20130524/r/s/aws4_request, SignedHeaders=host, "
        "Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4_request, SignedHeaders=host, "
        "Signature=" + "A" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4_request, SignedHeaders=host, "
        "Signature=" + "a" * 64 + ", Extra=1",
    ],
)
def test_parse_authorization_strict(value: str) -> None:
    with pytest.raises(AuthorizationHeaderMalformed):
        parse_authorization(value)


def test_dates() -> None:
    assert parse_amz_date("20150830T123600Z") == datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    assert parse_amz_date("20150830T123600") is None
    assert parse_amz_date("20151330T123600Z") is None
    assert parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT") == datetime(
        2015, 8, 30, 12, 36, tzinfo=UTC
    )
    assert parse_http_date("yesterday") is None


def test_signing_key_cache_is_bounded_and_holds_no_secret() -> None:
    cache = SigningKeyCache(maxsize=2)
    secret = "my-plaintext-secret"
    key = cache.get(secret, "20150830", "us-east-1", "s3")
    assert key == derive_signing_key(secret, "20150830", "us-east-1", "s3")
    assert cache.get(secret, "20150830", "us-east-1", "s3") is key
    cache.get(secret, "20150831", "us-east-1", "s3")
    cache.get(secret, "20150901", "us-east-1", "s3")
    assert len(cache) == 2
    assert secret not in repr(cache._keys)
    assert all(secret.encode() not in ident[0] for ident in cache._keys)
    # A rotated secret never gets the old key.
    assert cache.get("rotated", "20150901", "us-east-1", "s3") != key
    with pytest.raises(ValueError):
        SigningKeyCache(maxsize=0)


def test_secrets_stay_out_of_reprs() -> None:
    record = AccessKeySecret("AKID", "top-secret", "n", {}, True, "k")
    assert "top-secret" not in repr(record)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"region": ""},
        {"service": ""},
        {"max_skew": timedelta(0)},
        {"max_skew": timedelta(hours=2)},
        {"allow_unsigned_session_token": True},
    ],
)
def test_verifier_refuses_weak_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SigV4Verifier(lambda _: None, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ((("authorization", "AWS4-HMAC-SHA256 Credential=..."),), "", True),
        ((("authorization", "Bearer abc"),), "", False),
        ((), "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x", True),
        ((), "a=1&X-Amz-Signature=abc", True),
        ((), "a=X-Amz-Signature", False),
        ((), "", False),
    ],
)
def test_is_sigv4(headers: tuple[tuple[str, str], ...], query: str, expected: bool) -> None:
    facts = RequestFacts(method="GET", path="/", headers=headers, query_string=query)
    assert is_sigv4(facts) is expected


def test_error_xml_escapes_and_stays_well_formed() -> None:
    import xml.etree.ElementTree as ET

    err = SignatureDoesNotMatch(extra={"CanonicalRequest": "GET\n/<&>\x00\x1f\n"})
    root = ET.fromstring(err.to_xml("id<1>"))
    assert root.findtext("Code") == "SignatureDoesNotMatch"
    assert root.findtext("RequestId") == "id<1>"
    assert root.findtext("CanonicalRequest", "").startswith("GET\n/<&>")
    assert isinstance(err, AuthgateError) and isinstance(err, S3Error)
    assert err.status == 403 and err.s3_code == "SignatureDoesNotMatch"


def test_render_keeps_error_headers() -> None:
    err = S3Error("boom", headers={"Retry-After": "1"})
    status, headers, body = render_s3_error(err, "r", "PUT")
    assert status == 500
    assert ("retry-after", "1") in headers
    assert ("content-length", str(len(body))) in headers


def test_exports() -> None:
    for name in sigv4.__all__:
        assert hasattr(sigv4, name), name
    assert len(set(sigv4.__all__)) == len(sigv4.__all__)
