"""SigV2 from real clients with their default configuration: boto3's and the AWS CLI's
presigned URLs, and a header-signed boto3 client (``signature_version="s3"``), through
``authgate serve --upstream`` to moto; grants, revocation and ``sigv2 = false``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.foundation.helpers import clean_env, run_authgate, serve_process
from tests.s3.conftest import Stack
from tests.s3.support import pattern, s3_client, sha256
from tests.s3.test_awscli import aws
from tests.support import free_port


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    code: str = caught.value.response["Error"]["Code"]
    return code


def test_default_boto3_presigned_urls_work(stack: Stack, scheme: str) -> None:
    bucket, verify = f"boto-{scheme}", stack.tls(scheme)
    s3 = s3_client(stack.endpoint(scheme), stack.admin, verify=stack.verify(scheme))
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "v2 ü+%~.bin"}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in put_url and "X-Amz-" not in put_url
    body = pattern(100_000)
    assert httpx.put(put_url, content=body, verify=verify).status_code == 200
    get_url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "v2 ü+%~.bin", "ResponseContentType": "text/x-v2"},
        ExpiresIn=300,
    )
    response = httpx.get(get_url, verify=verify)
    assert response.status_code == 200
    assert sha256(response.content) == sha256(body)
    assert response.headers["content-type"] == "text/x-v2"


def test_a_header_signed_sigv2_client_works(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin, signature_version="s3")
    s3.put_object(Bucket="shared", Key="v2/header.txt", Body=b"v2 header", ContentType="text/plain")
    assert s3.get_object(Bucket="shared", Key="v2/header.txt")["Body"].read() == b"v2 header"
    listed = s3.list_objects_v2(Bucket="shared", Prefix="v2/")
    assert [item["Key"] for item in listed["Contents"]] == ["v2/header.txt"]
    s3.put_object_acl(Bucket="shared", Key="v2/header.txt", ACL="private")
    upload = s3.create_multipart_upload(Bucket="shared", Key="v2/parts.bin")
    part = s3.upload_part(
        Bucket="shared", Key="v2/parts.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    s3.complete_multipart_upload(
        Bucket="shared",
        Key="v2/parts.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    s3.copy_object(
        Bucket="shared", Key="v2/copy.txt", CopySource={"Bucket": "shared", "Key": "v2/header.txt"}
    )
    s3.delete_object(Bucket="shared", Key="v2/copy.txt")
    reader = s3_client(stack.http, stack.reader, signature_version="s3")
    assert reader.get_object(Bucket="shared", Key="v2/parts.bin")["Body"].read() == b"p"
    assert code_of(lambda: reader.put_object(Bucket="shared", Key="v2/no", Body=b"x")) == (
        "AccessDenied"
    )
    # The copy source's grant is checked as for SigV4.
    writer = s3_client(stack.http, stack.writer, signature_version="s3")
    source = {"Bucket": "outsider-bucket", "Key": "x"}
    assert code_of(
        lambda: writer.copy_object(Bucket="shared", Key="v2/stolen", CopySource=source)
    ) == ("AccessDenied")
    wrong = s3_client(stack.http, stack.admin, secret="x" * 40, signature_version="s3")
    assert code_of(lambda: wrong.list_objects_v2(Bucket="shared")) == "SignatureDoesNotMatch"


def test_aws_cli_presign_with_its_default_configuration(stack: Stack, scheme: str) -> None:
    bucket = f"cli-{scheme}"
    s3_client(stack.http, stack.admin).put_object(Bucket=bucket, Key="cli v2.txt", Body=b"cli")
    result = aws(stack, scheme, stack.admin, "s3", "presign", f"s3://{bucket}/cli v2.txt")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert "AWSAccessKeyId=" in url
    response = httpx.get(url, verify=stack.tls(scheme))
    assert (response.status_code, response.content) == (200, b"cli")


def test_a_presigned_get_outside_the_grants_is_refused(stack: Stack) -> None:
    reader = s3_client(stack.http, stack.reader)
    url = reader.generate_presigned_url("get_object", Params={"Bucket": "boto-http", "Key": "x"})
    response = httpx.get(url)
    assert response.status_code == 403
    assert b"<Code>AccessDenied</Code>" in response.content
    assert b"no read grant on bucket boto-http" in response.content
    put = reader.generate_presigned_url("put_object", Params={"Bucket": "shared", "Key": "no"})
    assert httpx.put(put, content=b"x").status_code == 403
    assert stack.recorder.for_path("PUT", "/shared/no") == []


def test_an_expired_presigned_url_is_refused(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "shared", "Key": "x"}, ExpiresIn=1
    )
    time.sleep(2.1)
    response = httpx.get(url)
    assert response.status_code == 403
    assert b"<Message>Request has expired</Message>" in response.content


def _refused_within(url: str, code: bytes, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(url)
        if response.status_code == 403:
            assert b"<Code>" + code + b"</Code>" in response.content
            return
        assert response.status_code == 200
        assert time.monotonic() < deadline, "the presigned URL still works"
        time.sleep(0.02)


def test_a_presigned_url_dies_with_its_key_and_with_its_grant(stack: Stack) -> None:
    s3_client(stack.http, stack.admin).put_object(Bucket="shared", Key="v2-life", Body=b"life")
    for_revoke = stack.key("v2-revoked", "shared=read")
    for_grant = stack.key("v2-ungranted", "shared=read")
    params = {"Bucket": "shared", "Key": "v2-life"}
    revoked_url = s3_client(stack.http, for_revoke).generate_presigned_url(
        "get_object", Params=params
    )
    ungranted_url = s3_client(stack.http, for_grant).generate_presigned_url(
        "get_object", Params=params
    )
    assert httpx.get(revoked_url).content == b"life"
    assert httpx.get(ungranted_url).content == b"life"
    base = ("--data-dir", str(stack.data_dir), "access-keys")
    assert run_authgate(*base, "revoke", for_revoke.id).returncode == 0
    _refused_within(revoked_url, b"InvalidAccessKeyId")
    assert run_authgate(*base, "revoke-grant", for_grant.id, "shared").returncode == 0
    _refused_within(ungranted_url, b"AccessDenied")


def test_mixed_mechanisms_and_repeated_signatures_are_refused(stack: Stack) -> None:
    s3 = s3_client(stack.http, stack.admin)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "x"})
    v4 = s3_client(stack.http, stack.admin, signature_version="s3v4")
    v4_url = v4.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "x"})
    signature = next(p for p in url.split("?")[1].split("&") if p.startswith("Signature="))
    for target in (url + "&" + signature, v4_url + "&" + signature):
        response = httpx.get(target)
        assert response.status_code == 400
        assert b"<Code>InvalidArgument</Code>" in response.content


@pytest.fixture(scope="module")
def no_sigv2(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One more gateway on the stack's data folder and store, with ``sigv2 = false``."""
    config = tmp_path_factory.mktemp("nosigv2") / "authgate.toml"
    config.write_text('sigv2 = false\nfailure_rate_limit = "100000/minute"\n')
    args = ["--data-dir", str(stack.data_dir), "--config", str(config), "--upstream", stack.moto]
    args += ["--localhost-bypass", "off"]
    with serve_process(config.parent / "serve", free_port(), *args, env=clean_env()) as served:
        yield served.url


def test_sigv2_false_answers_s3s_invalid_request(stack: Stack, no_sigv2: str) -> None:
    s3 = s3_client(no_sigv2, stack.admin)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "x"})
    response = httpx.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/xml"
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert b"AWS4-HMAC-SHA256" in response.content
    header = s3_client(no_sigv2, stack.admin, signature_version="s3")
    assert code_of(lambda: header.list_objects_v2(Bucket="shared")) == "InvalidRequest"
    # SigV4 goes on, and a SigV4 URL with a SigV2 Signature beside it is still refused.
    v4 = s3_client(no_sigv2, stack.admin, signature_version="s3v4")
    v4.list_objects_v2(Bucket="shared")
    v4_url = v4.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "x"})
    mixed = httpx.get(v4_url + "&Signature=x")
    assert mixed.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in mixed.content
