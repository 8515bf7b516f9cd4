"""Requests signed by real botocore (signers and a boto3 client) against SigV4Verifier."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from authgate.facts import RequestFacts
from authgate.sigv4 import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    SigV4Verifier,
    XAmzContentSHA256Mismatch,
    body_checker,
    is_sigv4,
    render_s3_error,
)
from tests.sigv4.support import (
    CREDS,
    ENDPOINT,
    INACTIVE,
    KEY,
    facts_from_botocore,
    fixed_clock,
    flip_hex,
    lookup_of,
    replace_header,
    signed_time,
    verifier_at,
    with_fields,
)

ODD_KEYS = [
    "plain.txt",
    "a b/c d.txt",
    "ü/ñ/日本語.txt",
    "plus+sign=equals~tilde",
    "weird !'()*@$&,;:",
    "dir//double//slash/./dot/../x",
    "percent%20literal%2Fslash",
]


def sign_header(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    region: str = "us-east-1",
    creds: Credentials = CREDS,
    context: dict[str, Any] | None = None,
) -> tuple[RequestFacts, bytes]:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    request.context.update(context or {})
    S3SigV4Auth(creds, "s3", region).add_auth(request)
    return facts_from_botocore(request)


def presign(
    method: str,
    url: str,
    *,
    expires: int = 3600,
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
) -> RequestFacts:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    S3SigV4QueryAuth(CREDS, "s3", region, expires=expires).add_auth(request)
    facts, _ = facts_from_botocore(request)
    return facts


def object_url(key: str, bucket: str = "bkt", query: str = "") -> str:
    from botocore.utils import percent_encode

    path = "/".join(percent_encode(part) for part in key.split("/"))
    return f"{ENDPOINT}/{bucket}/{path}" + (f"?{query}" if query else "")


# -- header form ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
def test_header_signed_get_with_odd_keys(key: str) -> None:
    facts, _ = sign_header(
        "GET", object_url(key, query="versionId=a%2Bb%3D~%20%C3%BC&x-id=GetObject")
    )
    assert is_sigv4(facts)
    result = verifier_at(facts).verify(facts)
    assert result.access_key is KEY
    assert result.payload_mode == "sha256"
    assert not result.presigned


def test_header_signed_put_with_body_and_checker() -> None:
    body = b"hello, \xff world" * 100
    facts, sent = sign_header("PUT", object_url("a b+c.txt"), body=body)
    result = verifier_at(facts).verify(facts)
    assert result.payload_mode == "sha256"
    checker = body_checker(result)
    checker.feed(sent[:10])
    checker.feed(sent[10:])
    checker.finish()

    checker = body_checker(result)
    checker.feed(sent[:-1] + b"X")
    with pytest.raises(XAmzContentSHA256Mismatch):
        checker.finish()
    # Given the body up front, the mismatch is found at once.
    with pytest.raises(XAmzContentSHA256Mismatch):
        verifier_at(facts).verify(facts, body=b"other")


def test_unsigned_payload() -> None:
    context = {"client_config": Config(s3={"payload_signing_enabled": False})}
    facts, _ = sign_header("PUT", object_url("k"), body=b"data", context=context)
    assert facts.header("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    result = verifier_at(facts).verify(facts)
    assert result.payload_mode == "unsigned"


def test_date_header_instead_of_x_amz_date() -> None:
    facts, _ = sign_header("GET", object_url("k"), headers={"Date": "placeholder"})
    assert facts.header("x-amz-date") is None
    date = facts.header("date")
    assert date is not None
    moment = parsedate_to_datetime(date).replace(tzinfo=UTC)
    SigV4Verifier(lookup_of(KEY), clock=fixed_clock(moment)).verify(facts)


@pytest.mark.parametrize("minutes", [-14, 14, -15, 15])
def test_skew_within_fifteen_minutes_accepted(minutes: int) -> None:
    facts, _ = sign_header("GET", object_url("k"))
    verifier_at(facts, timedelta(minutes=minutes)).verify(facts)


@pytest.mark.parametrize("minutes", [-16, 16])
def test_skew_beyond_fifteen_minutes_refused(minutes: int) -> None:
    facts, _ = sign_header("GET", object_url("k"))
    with pytest.raises(RequestTimeTooSkewed) as info:
        verifier_at(facts, timedelta(minutes=minutes)).verify(facts)
    assert info.value.status == 403
    assert info.value.extra["MaxAllowedSkewMilliseconds"] == "900000"


def test_wrong_region_answers_with_the_expected_region() -> None:
    facts, _ = sign_header("GET", object_url("k"), region="eu-west-1")
    with pytest.raises(AuthorizationHeaderMalformed) as info:
        verifier_at(facts).verify(facts)
    err = info.value
    assert err.status == 400
    assert err.extra["Region"] == "us-east-1"
    body = err.to_xml("req-1")
    assert b"<Code>AuthorizationHeaderMalformed</Code>" in body
    assert b"<Region>us-east-1</Region>" in body
    assert b"the region 'eu-west-1' is wrong; expecting 'us-east-1'" in body


def test_any_region_when_region_is_none() -> None:
    facts, _ = sign_header("GET", object_url("k"), region="eu-west-1")
    result = verifier_at(facts, region=None).verify(facts)
    assert result.credential.region == "eu-west-1"


def test_unsigned_amz_header_refused() -> None:
    facts, _ = sign_header("PUT", object_url("k"), body=b"x")
    tampered = replace_header(facts, "x-amz-acl", "public-read")
    with pytest.raises(AccessDenied) as info:
        verifier_at(facts).verify(tampered)
    assert info.value.detail == "There were headers present in the request which were not signed"
    assert info.value.extra["HeadersNotSigned"] == "x-amz-acl"


def test_signed_amz_header_accepted_and_tamper_refused() -> None:
    facts, _ = sign_header("PUT", object_url("k"), headers={"x-amz-acl": "private"}, body=b"x")
    verifier_at(facts).verify(facts)
    with pytest.raises(SignatureDoesNotMatch):
        verifier_at(facts).verify(replace_header(facts, "x-amz-acl", "public-read"))


def test_unknown_and_inactive_keys_refused_alike() -> None:
    facts, _ = sign_header("GET", object_url("k"), creds=Credentials("AKIANOBODY", "s"))
    with pytest.raises(InvalidAccessKeyId) as unknown:
        verifier_at(facts).verify(facts)
    facts, _ = sign_header(
        "GET", object_url("k"), creds=Credentials(INACTIVE.access_key_id, INACTIVE.secret)
    )
    with pytest.raises(InvalidAccessKeyId) as inactive:
        verifier_at(facts).verify(facts)
    assert unknown.value.detail == inactive.value.detail
    assert unknown.value.status == 403


def test_wrong_secret_reports_what_s3_reports() -> None:
    facts, _ = sign_header("GET", object_url("a b"), creds=Credentials(KEY.access_key_id, "nope"))
    with pytest.raises(SignatureDoesNotMatch) as info:
        verifier_at(facts).verify(facts)
    extra = info.value.extra
    assert extra["AWSAccessKeyId"] == KEY.access_key_id
    assert extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert extra["CanonicalRequest"].startswith("GET\n/bkt/a%20b\n")
    xml = info.value.to_xml("r")
    assert b"<StringToSign>" in xml and b"<CanonicalRequest>" in xml
    assert KEY.secret.encode() not in xml


def test_host_override_for_a_trusted_proxy() -> None:
    facts, _ = sign_header("GET", "https://public.example.com/bkt/k")
    behind_proxy = replace_header(facts, "host", "10.0.0.5:9000")
    with pytest.raises(SignatureDoesNotMatch):
        verifier_at(facts).verify(behind_proxy)
    verifier_at(facts).verify(behind_proxy, host="public.example.com")


def test_missing_content_sha256_for_s3_header_auth() -> None:
    facts, _ = sign_header("GET", object_url("k"))
    stripped = replace_header(facts, "x-amz-content-sha256", None)
    with pytest.raises(S3InvalidRequest):
        verifier_at(facts).verify(stripped)


def test_header_and_query_auth_together_refused() -> None:
    facts, _ = sign_header("GET", object_url("k"))
    query = presign("GET", object_url("k")).query_string
    with pytest.raises(InvalidArgument):
        verifier_at(facts).verify(with_fields(facts, query_string=query))


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIA/2015/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=xyz",
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws5_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws4_request, "
        "SignedHeaders=Host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64 + ", Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_refused(value: str) -> None:
    facts, _ = sign_header("GET", object_url("k"))
    with pytest.raises(AuthorizationHeaderMalformed):
        verifier_at(facts).verify(replace_header(facts, "authorization", value))


def test_credential_date_must_match_request_date() -> None:
    facts, _ = sign_header("GET", object_url("k"))
    stamp = facts.header("x-amz-date")
    assert stamp is not None
    other_day = (signed_time(facts) + timedelta(days=1)).strftime("%Y%m%d")
    auth = (facts.header("authorization") or "").replace(f"/{stamp[:8]}/", f"/{other_day}/")
    with pytest.raises(AuthorizationHeaderMalformed):
        verifier_at(facts).verify(replace_header(facts, "authorization", auth))


# -- presigned URLs -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
def test_presigned_get_with_odd_keys(key: str) -> None:
    facts = presign("GET", object_url(key, query="response-content-type=text%2Fplain%3B%20a%3Db"))
    assert is_sigv4(facts)
    result = verifier_at(facts).verify(facts)
    assert result.presigned
    assert result.payload_mode == "unsigned"


def test_presigned_wrong_signature_refused() -> None:
    facts = presign("GET", object_url("k"))
    signature = facts.query_string.rsplit("X-Amz-Signature=", 1)[1]
    tampered = facts.query_string.replace(signature, flip_hex(signature, 5))
    with pytest.raises(SignatureDoesNotMatch):
        verifier_at(facts).verify(with_fields(facts, query_string=tampered))


def test_presigned_expiry() -> None:
    facts = presign("GET", object_url("k"), expires=60)
    verifier_at(facts, timedelta(seconds=60)).verify(facts)
    with pytest.raises(AccessDenied) as info:
        verifier_at(facts, timedelta(seconds=61)).verify(facts)
    assert info.value.detail == "Request has expired"
    assert info.value.status == 403
    assert info.value.extra["X-Amz-Expires"] == "60"


def test_presigned_not_yet_valid() -> None:
    facts = presign("GET", object_url("k"))
    verifier_at(facts, -timedelta(minutes=14)).verify(facts)
    with pytest.raises(AccessDenied):
        verifier_at(facts, -timedelta(minutes=16)).verify(facts)


def test_presigned_expires_beyond_a_week_refused() -> None:
    facts = presign("GET", object_url("k"), expires=604801)
    with pytest.raises(AuthorizationQueryParametersError):
        verifier_at(facts).verify(facts)
    verifier_at(presign("GET", object_url("k"), expires=604800)).verify(
        presign("GET", object_url("k"), expires=604800)
    )


def test_presigned_wrong_region() -> None:
    facts = presign("GET", object_url("k"), region="ap-south-1")
    with pytest.raises(AuthorizationQueryParametersError) as info:
        verifier_at(facts).verify(facts)
    assert info.value.extra["Region"] == "us-east-1"


def test_presigned_missing_parameter() -> None:
    facts = presign("GET", object_url("k"))
    query = "&".join(p for p in facts.query_string.split("&") if not p.startswith("X-Amz-Expires"))
    with pytest.raises(AuthorizationQueryParametersError):
        verifier_at(facts).verify(with_fields(facts, query_string=query))


def test_presigned_unsigned_amz_header_refused() -> None:
    facts = presign("PUT", object_url("k"))
    with pytest.raises(AccessDenied):
        verifier_at(facts).verify(replace_header(facts, "x-amz-acl", "public-read"))


# -- a real boto3 client ------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        body, self._body = self._body, b""
        return body


@pytest.fixture
def s3_client() -> Iterator[tuple[Any, list[AWSRequest]]]:
    sent: list[AWSRequest] = []

    def before_send(request: AWSRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Raw(b""))

    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.meta.events.register("before-send.s3", before_send)
    yield client, sent
    client.close()


def _check_sent(request: AWSRequest) -> None:
    facts, body = facts_from_botocore(request)
    result = verifier_at(facts).verify(facts)
    checker = body_checker(result)
    for start in range(0, len(body), 3):
        checker.feed(body[start : start + 3])
    checker.finish()


OPERATIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("put_object", lambda c: c.put_object(Bucket="bkt", Key="a b+c=d~e/ü.txt", Body=b"hi" * 999)),
    (
        "put_object_sha256",
        lambda c: c.put_object(Bucket="bkt", Key="k", Body=b"x" * 5000, ChecksumAlgorithm="SHA256"),
    ),
    (
        "put_object_sha1",
        lambda c: c.put_object(Bucket="bkt", Key="k", Body=b"y", ChecksumAlgorithm="SHA1"),
    ),
    ("put_object_empty", lambda c: c.put_object(Bucket="bkt", Key="empty", Body=b"")),
    ("get_object", lambda c: c.get_object(Bucket="bkt", Key="ü ñ+=~.txt")),
    ("head_object", lambda c: c.head_object(Bucket="bkt", Key="a/b c")),
    ("list_objects_v2", lambda c: c.list_objects_v2(Bucket="bkt", Prefix="a b+c=d~ü")),
    ("delete_object", lambda c: c.delete_object(Bucket="bkt", Key="a+b")),
    (
        "delete_objects",
        lambda c: c.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}),
    ),
    ("create_multipart", lambda c: c.create_multipart_upload(Bucket="bkt", Key="big file")),
    (
        "upload_part",
        lambda c: c.upload_part(
            Bucket="bkt", Key="big file", UploadId="u+1=", PartNumber=2, Body=b"p" * 70000
        ),
    ),
    (
        "put_bucket_tagging",
        lambda c: c.put_bucket_tagging(
            Bucket="bkt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        ),
    ),
    ("create_bucket", lambda c: c.create_bucket(Bucket="new-bucket")),
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[name for name, _ in OPERATIONS])
def test_boto3_client_requests_verify(
    s3_client: tuple[Any, list[AWSRequest]], operation: tuple[str, Callable[[Any], object]]
) -> None:
    client, sent = s3_client
    try:
        operation[1](client)
    except Exception:  # the empty stub response may not parse; the request was sent
        pass
    assert sent, "botocore sent nothing"
    for request in sent:
        _check_sent(request)


def test_boto3_streaming_trailer_put_is_checked(s3_client: tuple[Any, list[AWSRequest]]) -> None:
    client, sent = s3_client
    client.put_object(Bucket="bkt", Key="k", Body=b"payload" * 1000)
    facts, body = facts_from_botocore(sent[0])
    result = verifier_at(facts).verify(facts)
    assert result.payload_mode == "streaming-unsigned-trailer"
    assert result.trailer_names == ("x-amz-checksum-crc32",)
    assert result.decoded_content_length == 7000

    checker = body_checker(result)
    with pytest.raises(BadDigest):
        checker.feed(body.replace(b"payload", b"paylaod", 1))
        checker.finish()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("get_object", {"Bucket": "bkt", "Key": "a b+c=d~e/ü.txt"}),
        ("put_object", {"Bucket": "bkt", "Key": "up load+.bin"}),
        ("list_objects_v2", {"Bucket": "bkt", "Prefix": "p q+r"}),
    ],
)
def test_boto3_presigned_urls_verify(
    s3_client: tuple[Any, list[AWSRequest]], method: str, params: dict[str, str]
) -> None:
    client, _ = s3_client
    url = client.generate_presigned_url(method, Params=params, ExpiresIn=900)
    parts = urlsplit(url)
    facts = RequestFacts(
        method="PUT" if method == "put_object" else "GET",
        path=parts.path,
        headers=(("host", parts.netloc),),
        query_string=parts.query,
        raw_path=parts.path,
    )
    result = verifier_at(facts).verify(facts)
    assert result.presigned


def test_render_error_for_head_has_no_body() -> None:
    facts, _ = sign_header("HEAD", object_url("k"), creds=Credentials("AKIANOBODY", "s"))
    with pytest.raises(InvalidAccessKeyId) as info:
        verifier_at(facts).verify(facts)
    status, headers, body = render_s3_error(info.value, "rid", "HEAD")
    assert (status, body) == (403, b"")
    assert ("x-amz-request-id", "rid") in headers
    status, headers, body = render_s3_error(info.value, "rid", "GET")
    assert status == 403
    assert ("content-type", "application/xml") in headers
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<Code>InvalidAccessKeyId</Code>" in body
    assert b"<AWSAccessKeyId>AKIANOBODY</AWSAccessKeyId>" in body
    assert body.endswith(b"<RequestId>rid</RequestId></Error>")


def test_body_digest_is_checked_only_after_the_signature() -> None:
    facts, _ = sign_header(
        "PUT", object_url("k"), body=b"abc", creds=Credentials(KEY.access_key_id, "x")
    )
    with pytest.raises(SignatureDoesNotMatch):
        verifier_at(facts).verify(facts, body=b"not abc")


def test_no_credentials_and_duplicate_authorization() -> None:
    facts, _ = sign_header("GET", object_url("k"))
    bare = replace_header(facts, "authorization", None)
    assert not is_sigv4(bare)
    with pytest.raises(AccessDenied):
        verifier_at(facts).verify(bare)
    doubled = RequestFacts(
        method="GET",
        path=facts.path,
        headers=(*facts.headers, ("authorization", facts.header("authorization") or "")),
        raw_path=facts.raw_path,
    )
    with pytest.raises(AuthorizationHeaderMalformed):
        verifier_at(facts).verify(doubled)


def test_invalid_content_sha256_value() -> None:
    facts, _ = sign_header("GET", object_url("k"), headers={"X-Amz-Content-SHA256": "abc"})
    with pytest.raises(InvalidArgument):
        verifier_at(facts).verify(replace_header(facts, "x-amz-content-sha256", "not-a-digest"))


def test_non_ascii_scope_is_malformed_not_a_crash() -> None:
    creds = Credentials("AKIA\u00fc\u65e5", "s")
    facts, _ = sign_header("GET", object_url("k"), creds=creds, region="r\u00e9gion")
    with pytest.raises(AuthorizationHeaderMalformed):
        verifier_at(facts, region=None).verify(facts)


def test_session_token_is_reported() -> None:
    creds = Credentials(KEY.access_key_id, KEY.secret, "session-token-value")
    facts, _ = sign_header("GET", object_url("k"), creds=creds)
    assert verifier_at(facts).verify(facts).security_token == "session-token-value"
