"""SigV2 requests signed by botocore's own signers (``HmacV1Auth``, ``HmacV1QueryAuth``)
against ``SigV2Verifier``: every method, sub-resource and odd key verifies, and every
signed part, changed, fails."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest

from authgate.facts import RequestFacts
from authgate.s3.sigv2 import UNSIGNED_FILTERS
from authgate.sigv2 import SigV2Result, SigV2Verifier, sign_v2
from authgate.sigv4 import (
    AccessDenied,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    render_s3_error,
)
from tests.sigv4.support import CREDS, INACTIVE, KEY, facts_from_botocore, lookup_of

HOST = "s3.example.test"
ODD_KEYS = [
    "plain.txt",
    "a b/c d.txt",
    "ü/ñ/日本語.txt",
    "plus+sign=equals~tilde",
    "percent%20literal%2Fslash",
    "weird !'()*@$&,;:",
]
SUB_RESOURCE_CASES = [
    ("GET", "acl", {}),
    ("PUT", "acl", {"x-amz-acl": "public-read"}),
    ("POST", "uploads", {"Content-Type": "text/plain"}),
    ("PUT", "partNumber=3&uploadId=up%2Fload.id", {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}),
    ("GET", "versionId=3HL4kqtJlcpXroDTDmJ%2Bkg", {}),
    ("DELETE", "versionId=v1", {}),
    (
        "GET",
        "response-content-type=text%2Fplain%3B%20charset%3Dutf-8"
        "&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
        {},
    ),
    ("GET", "tagging", {}),
    ("POST", "restore", {}),
]


def url_of(key: str, query: str = "", host: str = HOST, bucket: str | None = "bkt") -> str:
    path = "/" + quote(key, safe="/~") if bucket is None else f"/{bucket}/{quote(key, safe='/~')}"
    return f"https://{host}{path}" + (f"?{query}" if query else "")


def header_signed(
    method: str, url: str, headers: dict[str, str] | None = None, auth_path: str | None = None
) -> RequestFacts:
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    request.auth_path = auth_path
    HmacV1Auth(CREDS).add_auth(request)
    return facts_from_botocore(request)[0]


def presigned(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    expires: int = 300,
    auth_path: str | None = None,
) -> RequestFacts:
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    request.auth_path = auth_path
    HmacV1QueryAuth(CREDS, expires=expires).add_auth(request)
    facts = facts_from_botocore(request)[0]
    # What reaches the server is the URL alone, plus the headers the caller sends.
    return facts


def verifier(delta: timedelta = timedelta(0)) -> SigV2Verifier:
    moment = datetime.now(UTC) + delta
    return SigV2Verifier(
        lookup_of(KEY, INACTIVE), clock=lambda: moment, unsigned_params=UNSIGNED_FILTERS
    )


def with_headers(facts: RequestFacts, **changes: str | None) -> RequestFacts:
    names = {name.replace("_", "-"): value for name, value in changes.items()}
    headers = [(n, v) for n, v in facts.headers if n not in names]
    headers += [(n, v) for n, v in names.items() if v is not None]
    return _replace(facts, headers=tuple(headers))


def _replace(facts: RequestFacts, **changes: Any) -> RequestFacts:
    return dataclasses.replace(facts, _index={}, **changes)


def check(facts: RequestFacts, bucket: str | None = None) -> SigV2Result:
    return verifier().verify(facts, bucket=bucket)


# -- what verifies ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "DELETE"])
def test_header_form_verifies_for_every_method_and_key(method: str, key: str) -> None:
    headers = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
    result = check(header_signed(method, url_of(key), headers))
    assert result.access_key.access_key_id == KEY.access_key_id
    assert (result.presigned, result.payload_mode) == (False, "unsigned")


@pytest.mark.parametrize("key", ODD_KEYS)
def test_query_form_verifies_for_every_key(key: str) -> None:
    result = check(presigned("GET", url_of(key)))
    assert result.presigned
    assert abs(result.request_time - (datetime.now(UTC) + timedelta(seconds=300))) < timedelta(
        seconds=5
    )


@pytest.mark.parametrize(("method", "query", "headers"), SUB_RESOURCE_CASES)
def test_sub_resources_are_signed_as_botocore_signs_them(
    method: str, query: str, headers: dict[str, str]
) -> None:
    check(header_signed(method, url_of("k", query), headers))
    check(presigned(method, url_of("k", query), headers))


def test_bucket_requests_sign_the_bucket_with_its_slash() -> None:
    # botocore sends /bkt and signs /bkt/, as S3 wants.
    check(header_signed("GET", f"https://{HOST}/bkt?list-type=2&prefix=a", auth_path="/bkt/"))
    check(header_signed("PUT", f"https://{HOST}/bkt?versioning", auth_path="/bkt/"))
    check(header_signed("GET", f"https://{HOST}/"))


def test_virtual_host_buckets_are_signed_in_the_resource() -> None:
    facts = header_signed(
        "GET", url_of("a b", host=f"bkt.{HOST}", bucket=None), auth_path="/bkt/a%20b"
    )
    check(facts, bucket="bkt")
    # The same bytes read as another bucket (another Host) do not verify.
    with pytest.raises(SignatureDoesNotMatch):
        check(facts, bucket="other")
    with pytest.raises(SignatureDoesNotMatch):
        check(facts, bucket=None)
    root = header_signed("GET", f"https://bkt.{HOST}/?acl", auth_path="/bkt/")
    check(root, bucket="bkt")
    url = presigned("GET", url_of("k", host=f"bkt.{HOST}", bucket=None), auth_path="/bkt/k")
    check(url, bucket="bkt")


def test_presigned_headers_travel_in_the_query() -> None:
    # botocore moves signed x-amz-* headers and Content-Type into the URL.
    facts = presigned("PUT", url_of("k"), {"x-amz-acl": "public-read", "Content-Type": "text/x"})
    assert "x-amz-acl=public-read" in facts.query_string
    sent = with_headers(facts, x_amz_acl=None)  # the client sends the URL, and its body
    check(sent)
    with pytest.raises(SignatureDoesNotMatch):
        check(_replace(sent, query_string=sent.query_string.replace("public-read", "private")))


def test_x_amz_date_signs_an_empty_date_line() -> None:
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    to_sign = f"GET\n\n\n\nx-amz-date:{stamp}\n/bkt/k"
    signature = sign_v2(KEY.secret, to_sign)
    facts = RequestFacts(
        method="GET",
        path="/bkt/k",
        raw_path="/bkt/k",
        headers=(
            ("host", HOST),
            ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
            ("x-amz-date", stamp),
            ("authorization", f"AWS {KEY.access_key_id}:{signature}"),
        ),
    )
    check(facts)


def test_sign_v2_is_botocores_hmac() -> None:
    assert sign_v2(KEY.secret, "GET\n\n\nnow\n/b/k") == HmacV1Auth(CREDS).sign_string(
        "GET\n\n\nnow\n/b/k"
    )


# -- what fails -----------------------------------------------------------------------------


def _header_tampers(facts: RequestFacts) -> list[RequestFacts]:
    return [
        _replace(facts, method="DELETE"),
        with_headers(facts, content_md5="XrY7u+Ae7tCTyyK7j1rNww=="),
        with_headers(facts, content_type="text/html"),
        with_headers(facts, x_amz_meta_owner="mallory"),
        with_headers(
            facts, date=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 60))
        ),
        _replace(facts, raw_path="/bkt/other", path="/bkt/other"),
        _replace(facts, raw_path="/other/k", path="/other/k"),
        _replace(facts, query_string="acl"),
        _replace(facts, query_string="versionId=v2"),
    ]


def test_each_signed_part_of_the_header_form_is_checked() -> None:
    facts = header_signed(
        "PUT",
        url_of("k", "versionId=v1"),
        {
            "Content-Type": "text/plain",
            "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
            "x-amz-meta-owner": "alice",
        },
    )
    check(facts)
    for tampered in _header_tampers(facts):
        with pytest.raises(SignatureDoesNotMatch):
            check(tampered)


def test_each_signed_part_of_the_query_form_is_checked() -> None:
    facts = presigned("GET", url_of("k", "response-content-type=text%2Fplain"))
    check(facts)
    later = str(int(time.time()) + 900)
    query = facts.query_string
    for tampered in (
        _replace(facts, method="PUT"),
        _replace(facts, raw_path="/bkt/other", path="/bkt/other"),
        _replace(facts, query_string=query.replace("text%2Fplain", "text%2Fhtml")),
        _replace(facts, query_string=_set_param(query, "Expires", later)),
        _replace(facts, query_string=query + "&versionId=v1"),
    ):
        with pytest.raises(SignatureDoesNotMatch):
            check(tampered)


def _set_param(query: str, name: str, value: str) -> str:
    return "&".join(
        f"{name}={value}" if piece.startswith(name + "=") else piece for piece in query.split("&")
    )


def test_a_wrong_signature_is_signature_does_not_match_with_s3s_details() -> None:
    facts = header_signed("GET", url_of("k"))
    authorization = facts.header("authorization") or ""
    wrong = base64.b64encode(hashlib.sha1(b"x").digest()).decode()
    with pytest.raises(SignatureDoesNotMatch) as caught:
        check(with_headers(facts, authorization=authorization.split(":")[0] + ":" + wrong))
    assert caught.value.extra["StringToSign"].endswith("/bkt/k")
    _status, _headers, body = render_s3_error(caught.value, "REQ", "GET")
    assert b"<Code>SignatureDoesNotMatch</Code>" in body
    assert KEY.secret.encode() not in body


def test_expired_urls_are_refused_as_s3_refuses_them() -> None:
    facts = presigned("GET", url_of("k"), expires=60)
    with pytest.raises(AccessDenied) as caught:
        verifier(timedelta(seconds=61)).verify(facts)
    assert caught.value.detail == "Request has expired"
    assert set(caught.value.extra) == {"Expires", "ServerTime"}
    verifier(timedelta(seconds=59)).verify(facts)


def test_header_dates_must_be_within_fifteen_minutes() -> None:
    facts = header_signed("GET", url_of("k"))
    verifier(timedelta(minutes=14)).verify(facts)
    with pytest.raises(RequestTimeTooSkewed):
        verifier(timedelta(minutes=16)).verify(facts)
    with pytest.raises(RequestTimeTooSkewed):
        verifier(-timedelta(minutes=16)).verify(facts)
    with pytest.raises(AccessDenied):
        check(with_headers(facts, date=None))


def test_unknown_and_disabled_keys_are_invalid_access_key_id() -> None:
    facts = header_signed("GET", url_of("k"))
    authorization = facts.header("authorization") or ""
    for key_id in ("AKIANOBODY", INACTIVE.access_key_id):
        changed = with_headers(
            facts, authorization=authorization.replace(KEY.access_key_id, key_id)
        )
        with pytest.raises(InvalidAccessKeyId):
            check(changed)


# -- what is refused before any signature ---------------------------------------------------


def test_two_mechanisms_are_refused() -> None:
    header = header_signed("GET", url_of("k"))
    query = presigned("GET", url_of("k"))
    authorization = header.header("authorization") or ""
    both = with_headers(query, authorization=authorization)
    twice = _replace(header, headers=(*header.headers, ("authorization", authorization)))
    with_v4 = _replace(header, query_string="X-Amz-Algorithm=AWS4-HMAC-SHA256")
    for facts in (both, twice, with_v4):
        with pytest.raises(InvalidArgument):
            check(facts)


def test_repeated_parameters_are_refused() -> None:
    facts = presigned("GET", url_of("k"))
    signature = next(p for p in facts.query_string.split("&") if p.startswith("Signature="))
    for query in (
        facts.query_string + "&" + signature,
        facts.query_string + "&Expires=1",
        facts.query_string + "&versionId=a&versionId=b",
    ):
        with pytest.raises(InvalidArgument):
            check(_replace(facts, query_string=query))


@pytest.mark.parametrize(
    "param", ["retention", "legal-hold", "attributes", "%61cl", "x-amz-acl=private"]
)
def test_unsigned_parameters_that_change_the_operation_are_refused(param: str) -> None:
    header = header_signed("PUT", url_of("k"))
    with pytest.raises(AccessDenied, match="not covered"):
        check(_replace(header, query_string=param))
    query = presigned("PUT", url_of("k"))
    if not param.startswith("x-amz-"):  # a presigned URL's x-amz-* are signed headers
        with pytest.raises(AccessDenied, match="not covered"):
            check(_replace(query, query_string=query.query_string + "&" + param))


def test_listing_filters_may_stay_unsigned() -> None:
    facts = header_signed(
        "GET", f"https://{HOST}/bkt?list-type=2&prefix=a&max-keys=5", auth_path="/bkt/"
    )
    check(facts)


def test_a_bare_plus_in_a_signed_value_is_refused() -> None:
    facts = presigned("GET", url_of("k", "versionId=a+b"))
    with pytest.raises(AccessDenied, match="bare"):
        check(facts)


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS ",
        "AWS key",
        "AWS key:",
        "AWS key:short=",
        "AWS a:b:" + "A" * 27 + "=",
        "AWS  k:" + "A" * 27 + "=",
    ],
)
def test_malformed_authorization_headers_are_invalid_argument(authorization: str) -> None:
    facts = with_headers(header_signed("GET", url_of("k")), authorization=authorization)
    with pytest.raises(InvalidArgument):
        check(facts)


def test_a_query_form_needs_all_three_parameters() -> None:
    facts = presigned("GET", url_of("k"))
    for name in ("AWSAccessKeyId", "Signature", "Expires"):
        query = "&".join(p for p in facts.query_string.split("&") if not p.startswith(name + "="))
        with pytest.raises(AccessDenied):
            check(_replace(facts, query_string=query))


@pytest.mark.parametrize("expires", ["999999999999", "-1", "1e9", "", "0x10"])
def test_an_expires_that_is_no_time_is_access_denied(expires: str) -> None:
    facts = presigned("GET", url_of("k"))
    with pytest.raises(AccessDenied):
        check(_replace(facts, query_string=_set_param(facts.query_string, "Expires", expires)))
