"""boto3 through ``authgate serve --upstream`` in front of moto, over HTTP and HTTPS.

With its default settings boto3 signs the body's SHA-256 over HTTP and sends
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (aws-chunked, a CRC32 trailer, no Content-Length)
over HTTPS; ``payload_signing_enabled=False`` gives ``UNSIGNED-PAYLOAD``. The recording
hop in front of moto checks each request again as moto received it.
"""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from boto3.s3.transfer import TransferConfig

from tests.gateway.serve_cli import make_key
from tests.s3.conftest import Stack
from tests.s3.support import pattern, s3_client, sha256

MB = 1024 * 1024


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_objects_round_trip_in_the_default_payload_mode(stack: Stack, scheme: str) -> None:
    bucket = f"boto-{scheme}"
    s3 = s3_client(stack.endpoint(scheme), stack.admin, verify=stack.verify(scheme))
    body = pattern(300_000)
    key = "dir/a key with spaces+plus&more é.bin"
    s3.put_object(Bucket=bucket, Key=key, Body=body)

    assert sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == sha256(body)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [item["Key"] for item in listed["Contents"]] == [key]

    (put,) = [s for s in stack.recorder.seen if s.method == "PUT" and "spaces" in s.path]
    stack.recorder.seen.remove(put)
    assert put.verified, put.error
    if scheme == "http":
        assert put.mode == "sha256"
        assert put.headers["content-length"] == str(len(body))
    else:
        assert put.mode == "streaming-unsigned-trailer"
        assert put.headers["content-encoding"] == "aws-chunked"
        assert put.headers["x-amz-decoded-content-length"] == str(len(body))
        assert "content-length" not in put.headers
        assert put.body_bytes > len(body)  # the chunk framing reached moto as sent

    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["KeyCount"] == 0


def test_multipart_upload_over_20_mb_round_trips(stack: Stack, scheme: str) -> None:
    bucket = f"boto-{scheme}"
    s3 = s3_client(stack.endpoint(scheme), stack.admin, verify=stack.verify(scheme))
    body = pattern(21 * MB)
    config = TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    s3.upload_fileobj(io.BytesIO(body), bucket, "big.bin", Config=config)

    parts = [s for s in stack.recorder.seen if s.method == "PUT" and s.path == f"/{bucket}/big.bin"]
    assert len(parts) == 3
    assert all(part.verified for part in parts)

    out = io.BytesIO()
    s3.download_fileobj(bucket, "big.bin", out, Config=config)
    assert hashlib.sha256(out.getvalue()).hexdigest() == sha256(body)


def test_unsigned_payload_and_signed_body_over_https(stack: Stack) -> None:
    unsigned = s3_client(stack.http, stack.admin, s3={"payload_signing_enabled": False})
    unsigned.put_object(Bucket="boto-http", Key="unsigned.txt", Body=b"unsigned body")
    signed = s3_client(
        stack.https, stack.admin, verify=str(stack.ca), request_checksum_calculation="when_required"
    )
    signed.put_object(Bucket="boto-https", Key="signed.txt", Body=b"signed body")

    (first,) = stack.recorder.for_path("PUT", "/boto-http/unsigned.txt")
    (second,) = stack.recorder.for_path("PUT", "/boto-https/signed.txt")
    assert (first.mode, first.verified) == ("unsigned", True)
    assert (second.mode, second.verified) == ("sha256", True)
    assert signed.get_object(Bucket="boto-http", Key="unsigned.txt")["Body"].read() == (
        b"unsigned body"
    )


def test_presigned_urls_work_with_plain_http_clients(stack: Stack, scheme: str) -> None:
    bucket = f"boto-{scheme}"
    verify = stack.tls(scheme)
    # boto3 presigns with SigV2 unless told otherwise (tests/s3/test_sigv2.py); SigV4 here.
    s3 = s3_client(
        stack.endpoint(scheme), stack.admin, verify=stack.verify(scheme), signature_version="s3v4"
    )
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned.bin"}, ExpiresIn=300
    )
    body = pattern(200_000)
    assert httpx.put(put_url, content=body, verify=verify).status_code == 200
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "presigned.bin"}, ExpiresIn=300
    )
    response = httpx.get(get_url, verify=verify)
    assert response.status_code == 200
    assert sha256(response.content) == sha256(body)
    assert stack.recorder.for_path("PUT", f"/{bucket}/presigned.bin")[-1].mode == "unsigned"


def test_list_buckets_shows_only_granted_buckets(stack: Stack) -> None:
    reader = s3_client(stack.http, stack.reader)
    assert [b["Name"] for b in reader.list_buckets()["Buckets"]] == ["shared"]
    admin = s3_client(stack.https, stack.admin, verify=str(stack.ca))
    names = {b["Name"] for b in admin.list_buckets()["Buckets"]}
    assert "shared" in names and "boto-http" in names
    assert "outsider-bucket" not in names


def test_copy_needs_read_on_the_source(stack: Stack) -> None:
    admin = s3_client(stack.http, stack.admin)
    admin.put_object(Bucket="copy-src", Key="original", Body=b"copy me")
    admin.copy_object(
        Bucket="shared", Key="copied", CopySource={"Bucket": "copy-src", "Key": "original"}
    )
    reader = s3_client(stack.http, stack.reader)
    assert reader.get_object(Bucket="shared", Key="copied")["Body"].read() == b"copy me"


def test_api_keys_and_access_keys_on_one_gateway(stack: Stack) -> None:
    token, api_key_id = make_key(stack.data_dir, "s3-api-reader", "read")
    # An API-key request reaches the store unsigned: anonymous there, so a public object.
    admin = s3_client(stack.http, stack.admin)
    admin.put_object(Bucket="shared", Key="both.txt", Body=b"both", ACL="public-read")

    by_token = httpx.get(f"{stack.http}/shared/both.txt", headers={"X-API-Key": token})
    assert by_token.status_code == 200, by_token.text
    assert by_token.content == b"both"
    by_access_key = s3_client(stack.http, stack.reader).get_object(Bucket="shared", Key="both.txt")
    assert by_access_key["Body"].read() == b"both"

    first, second = stack.recorder.for_path("GET", "/shared/both.txt")
    assert first.headers["x-authgate-key-id"] == api_key_id
    assert "x-api-key" not in first.headers and first.mode is None
    assert second.headers["x-authgate-key-id"] == stack.reader.id
    assert second.verified and second.headers["authorization"].startswith("AWS4-HMAC-SHA256")
