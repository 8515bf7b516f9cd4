"""Every refusal as an S3 client sees it: S3's error code, S3's XML, and nothing that
reached the store. Also the payload forms no installed client sends by default
(``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``), signed here by hand on botocore's signer."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.foundation.helpers import run_authgate
from tests.s3.conftest import Stack
from tests.s3.support import (
    REGION,
    AccessKey,
    pattern,
    s3_client,
    streaming_length,
    streaming_signed_body,
)


def code_of(call: Any) -> tuple[str, dict[str, str]]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPHeaders"]


def xml_code(response: httpx.Response) -> str:
    match = re.search(rb"<Code>([^<]*)</Code>", response.content)
    assert match is not None, response.content
    return match.group(1).decode()


def signed_headers(
    url: str, method: str, key: AccessKey, content_sha256: str, **headers: str
) -> dict[str, str]:
    """Headers of a request signed by botocore's own SigV4 signer, payload as given."""
    request = AWSRequest(
        method=method, url=url, headers={**headers, "X-Amz-Content-SHA256": content_sha256}
    )
    SigV4Auth(Credentials(key.access_key_id, key.secret), "s3", REGION).add_auth(request)
    return dict(request.headers.items())


def missing(stack: Stack, bucket: str, key: str) -> bool:
    admin = s3_client(stack.http, stack.admin)
    try:
        admin.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "404")
    return False


def test_a_wrong_secret_is_signature_does_not_match(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin, secret="w" * 40)
    code, headers = code_of(lambda: s3.put_object(Bucket="shared", Key="nope", Body=b"x"))
    assert code == "SignatureDoesNotMatch"
    assert headers["content-type"] == "application/xml"
    assert re.fullmatch(r"[0-9A-F]{16}", headers["x-amz-request-id"])
    assert stack.recorder.for_path("PUT", "/shared/nope") == []


def test_an_unknown_key_is_invalid_access_key_id(stack: Stack) -> None:
    s3 = s3_client(stack.https, verify=str(stack.ca))
    code, _ = code_of(lambda: s3.list_objects_v2(Bucket="shared"))
    assert code == "InvalidAccessKeyId"


def test_a_revoked_key_is_refused_within_a_second(stack: Stack) -> None:
    key = stack.key("short-lived", "shared=read")
    s3 = s3_client(stack.http, key)
    s3.list_objects_v2(Bucket="shared")
    result = run_authgate("--data-dir", str(stack.data_dir), "access-keys", "revoke", key.id)
    assert result.returncode == 0, result.stderr
    revoked_at = time.monotonic()
    while True:
        try:
            s3.list_objects_v2(Bucket="shared")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
            break
        assert time.monotonic() - revoked_at < 1.0, "still accepted a second after revoke"
        time.sleep(0.02)


def test_a_bucket_outside_the_grants_is_access_denied(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin)
    code, _ = code_of(lambda: s3.get_object(Bucket="outsider-bucket", Key="x"))
    assert code == "AccessDenied"
    # HEAD carries the status alone (HTTP allows no body), with the request id.
    code, headers = code_of(lambda: s3.head_object(Bucket="outsider-bucket", Key="x"))
    assert code == "403"
    assert "x-amz-request-id" in headers


def test_a_read_grant_cannot_write_or_copy_from_ungranted_buckets(stack: Stack) -> None:
    reader = s3_client(stack.http, stack.reader)
    code, _ = code_of(lambda: reader.put_object(Bucket="shared", Key="ro", Body=b"x"))
    assert code == "AccessDenied"
    writer = s3_client(stack.http, stack.writer)
    s3_client(stack.http, stack.admin).put_object(Bucket="copy-src", Key="src", Body=b"s")
    copy = {"Bucket": "copy-src", "Key": "src"}
    code, _ = code_of(lambda: writer.copy_object(Bucket="shared", Key="dst", CopySource=copy))
    assert code == "AccessDenied"
    assert missing(stack, "shared", "ro") and missing(stack, "shared", "dst")


def test_a_tampered_presigned_url_is_signature_does_not_match(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin, signature_version="s3v4")
    s3.put_object(Bucket="shared", Key="public.txt", Body=b"fine")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "public.txt"})
    assert httpx.get(url).content == b"fine"
    tampered = httpx.get(url.replace("/public.txt?", "/other.txt?"))
    assert tampered.status_code == 403
    assert xml_code(tampered) == "SignatureDoesNotMatch"
    assert b"<CanonicalRequest>" in tampered.content  # so a client's author can debug


def test_an_expired_presigned_url_is_access_denied(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_hours_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: two_hours_ago)
    s3 = s3_client(stack.http, stack.admin, signature_version="s3v4")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "shared", "Key": "public.txt"}, ExpiresIn=60
    )
    response = httpx.get(url)
    assert response.status_code == 403
    assert xml_code(response) == "AccessDenied"
    assert b"Request has expired" in response.content


def test_a_skewed_clock_is_request_time_too_skewed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: ahead)
    s3 = s3_client(stack.http, stack.admin)
    code, _ = code_of(lambda: s3.put_object(Bucket="shared", Key="skewed", Body=b"x"))
    assert code == "RequestTimeTooSkewed"


def test_a_body_not_matching_its_digest_never_lands(stack: Stack) -> None:
    url = f"{stack.http}/shared/digest.bin"
    original = pattern(256 * 1024)
    tampered = bytearray(original)
    tampered[-1] ^= 1
    digest = hashlib.sha256(original).hexdigest()
    headers = signed_headers(url, "PUT", stack.writer, digest)
    response = httpx.put(url, headers=headers, content=bytes(tampered))
    assert response.status_code == 400
    assert xml_code(response) == "XAmzContentSHA256Mismatch"
    assert missing(stack, "shared", "digest.bin")
    # The same request with the body it signed goes through.
    assert httpx.put(url, headers=headers, content=original).status_code == 200


def _streaming_put(stack: Stack, url: str, payload: bytes, corrupt: bool) -> httpx.Response:
    length = streaming_length(len(payload))
    headers = signed_headers(
        url,
        "PUT",
        stack.writer,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        **{
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(len(payload)),
            "Content-Length": str(length),
        },
    )
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = bytearray(
        streaming_signed_body(
            payload,
            secret=stack.writer.secret,
            timestamp=headers["X-Amz-Date"],
            seed_signature=seed,
        )
    )
    assert len(body) == length
    if corrupt:
        body[200_000] ^= 1  # inside the fourth chunk's data
    return httpx.put(url, headers=headers, content=bytes(body))


def test_streaming_signed_chunks_are_checked_in_sequence(stack: Stack) -> None:
    payload = pattern(300_000)
    good = _streaming_put(stack, f"{stack.http}/shared/streamed.bin", payload, corrupt=False)
    assert good.status_code == 200, good.text
    (seen,) = stack.recorder.for_path("PUT", "/shared/streamed.bin")
    assert (seen.mode, seen.verified) == ("streaming-signed", True)
    reader = s3_client(stack.http, stack.reader)
    assert reader.get_object(Bucket="shared", Key="streamed.bin")["Body"].read() == payload

    bad = _streaming_put(stack, f"{stack.http}/shared/corrupt.bin", payload, corrupt=True)
    assert bad.status_code == 403
    assert xml_code(bad) == "SignatureDoesNotMatch"
    assert missing(stack, "shared", "corrupt.bin")


def test_an_unsigned_trailer_with_a_wrong_checksum_is_bad_digest(stack: Stack) -> None:
    url = f"{stack.https}/shared/trailer.txt"
    payload = b"hello, trailer"

    def body(checksum: bytes) -> bytes:
        return (
            f"{len(payload):x}\r\n".encode()
            + payload
            + b"\r\n0\r\nx-amz-checksum-crc32:"
            + base64.b64encode(checksum)
            + b"\r\n\r\n"
        )

    headers = signed_headers(
        url,
        "PUT",
        stack.writer,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        **{
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(len(payload)),
            "X-Amz-Trailer": "x-amz-checksum-crc32",
        },
    )
    tls = stack.tls("https")
    right = zlib.crc32(payload).to_bytes(4, "big")
    wrong = httpx.put(url, headers=headers, content=body(b"\0\0\0\0"), verify=tls)
    assert wrong.status_code == 400
    assert xml_code(wrong) == "BadDigest"
    assert missing(stack, "shared", "trailer.txt")
    assert httpx.put(url, headers=headers, content=body(right), verify=tls).status_code == 200


def test_the_access_log_names_the_key_never_its_secret(stack: Stack) -> None:
    s3_client(stack.http, stack.admin).list_objects_v2(Bucket="shared", Prefix="logged")
    wrong = s3_client(stack.http, stack.admin, secret="z" * 40)
    code_of(lambda: wrong.get_object(Bucket="shared", Key="logged-failure"))
    _out, err = stack.http_process.output()
    assert f"Auth: yes key={stack.admin.id}" in err
    assert '"GET /shared/logged-failure" 403 Auth: no key=-' in err
    assert stack.admin.secret not in err


def test_a_client_signing_for_another_region_is_told_the_right_one(stack: Stack) -> None:
    s3_client(stack.http, stack.admin).put_object(Bucket="shared", Key="region.txt", Body=b"r")
    elsewhere = boto3.client(
        "s3",
        endpoint_url=stack.http,
        aws_access_key_id=stack.reader.access_key_id,
        aws_secret_access_key=stack.reader.secret,
        region_name="eu-west-1",
    )
    # AuthorizationHeaderMalformed names us-east-1; botocore's redirector signs again.
    assert elsewhere.get_object(Bucket="shared", Key="region.txt")["Body"].read() == b"r"
    (seen,) = stack.recorder.for_path("GET", "/shared/region.txt")
    assert "/us-east-1/s3/aws4_request" in seen.headers["authorization"]
