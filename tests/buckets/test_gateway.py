"""Bucket patterns, presigned URLs, CORS preflights and a public bucket, through
``authgate serve --upstream`` in front of moto's S3 server, with boto3, the AWS CLI and
curl as the clients."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from authgate.credentials.bootstrap import read_admin_key
from tests.foundation.helpers import clean_env, serve_process
from tests.s3.support import BIN, AccessKey, create_access_key, moto_server, s3_client
from tests.support import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3.md"


def _public_bucket_snippet() -> str:
    """The public-bucket configuration of docs/s3.md, as printed there."""
    match = re.search(r"<!-- test: s3-public-bucket -->\n```toml\n(.*?)```", DOC.read_text(), re.S)
    assert match is not None
    return match.group(1)


# The refusal tests fail on purpose from one address; then the documented rules.
CONFIG = 'failure_rate_limit = "100000/minute"\n' + _public_bucket_snippet()

ORIGIN = "https://app.example.org"


@dataclass
class Stack:
    data_dir: Path
    url: str
    admin_token: str
    ops: AccessKey  # *=admin
    job: AccessKey  # backup-*=write, backup-keep=read, ci-*=admin
    writer: AccessKey  # backup-*=write only

    def api(self) -> httpx.Client:
        headers = {"X-API-Key": self.admin_token}
        return httpx.Client(base_url=self.url + "/authgate/v1", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("buckets")
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    config = root / "authgate.toml"
    config.write_text(CONFIG)
    with moto_server(root / "moto", free_port()) as moto:
        keys = [
            create_access_key(data_dir, "ops", "*=admin"),
            create_access_key(data_dir, "job", "backup-*=write", "backup-keep=read", "ci-*=admin"),
            create_access_key(data_dir, "writer", "backup-*=write"),
        ]
        args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", moto]
        args += ["--localhost-bypass", "off"]
        with serve_process(root / "serve", free_port(), *args, env=clean_env()) as served:
            stack = Stack(data_dir, served.url, read_admin_key(data_dir / "admin.key"), *keys)
            ops = s3_client(stack.url, stack.ops)
            for bucket in ("photos", "shared", "backup-2026-12-01", "backup-keep", "backup"):
                ops.create_bucket(Bucket=bucket)
            # The store has its own say on anonymous reads (S3 and moto: the object's ACL).
            ops.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow", ACL="public-read")
            ops.put_object(Bucket="shared", Key="doc.txt", Body=b"private")
            ops.put_object(Bucket="backup-keep", Key="old.tar", Body=b"kept")
            yield stack


def code_of(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def v4(stack: Stack, key: AccessKey) -> Any:
    return s3_client(stack.url, key, signature_version="s3v4")


# -- patterns ------------------------------------------------------------------------------


def test_the_most_specific_grant_decides_through_the_gateway(stack: Stack) -> None:
    job = s3_client(stack.url, stack.job)
    job.put_object(Bucket="backup-2026-12-01", Key="db.tar", Body=b"x")  # backup-*=write
    assert job.get_object(Bucket="backup-keep", Key="old.tar")["Body"].read() == b"kept"
    with pytest.raises(ClientError) as refused:  # backup-keep=read beats backup-*=write
        job.put_object(Bucket="backup-keep", Key="new.tar", Body=b"x")
    assert code_of(refused) == ("AccessDenied", 403)
    assert "no write grant on bucket backup-keep" in str(refused.value)


def test_a_name_confusable_with_a_pattern_is_not_admitted(stack: Stack) -> None:
    job = s3_client(stack.url, stack.job)
    # "backup" is not "backup-*": the dash is part of the pattern.
    with pytest.raises(ClientError) as refused:
        job.list_objects_v2(Bucket="backup")
    assert code_of(refused) == ("AccessDenied", 403)
    with pytest.raises(ClientError):
        job.get_object(Bucket="shared", Key="doc.txt")


def test_list_buckets_shows_what_the_patterns_admit(stack: Stack) -> None:
    listed = [b["Name"] for b in s3_client(stack.url, stack.job).list_buckets()["Buckets"]]
    assert sorted(listed) == ["backup-2026-12-01", "backup-keep"]
    everything = [b["Name"] for b in s3_client(stack.url, stack.ops).list_buckets()["Buckets"]]
    assert {"photos", "shared", "backup", "backup-keep"} <= set(everything)


def test_aws_cli_lists_by_the_patterns(stack: Stack, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=stack.job.access_key_id,
        AWS_SECRET_ACCESS_KEY=stack.job.secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_MAX_ATTEMPTS="1",
        HOME=str(tmp_path),
    )
    result = subprocess.run(
        [str(BIN / "aws"), "s3", "ls", "--endpoint-url", stack.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(line.split()[-1] for line in result.stdout.splitlines())
    assert names == ["backup-2026-12-01", "backup-keep"]


def test_create_and_delete_bucket_need_admin_on_a_pattern(stack: Stack) -> None:
    writer = s3_client(stack.url, stack.writer)
    with pytest.raises(ClientError) as refused:  # write on backup-* does not create
        writer.create_bucket(Bucket="backup-2026-12-02")
    assert code_of(refused) == ("AccessDenied", 403)
    assert "no admin grant on bucket backup-2026-12-02" in str(refused.value)
    job = s3_client(stack.url, stack.job)
    job.create_bucket(Bucket="ci-run-4711")  # ci-*=admin
    assert "ci-run-4711" in [b["Name"] for b in job.list_buckets()["Buckets"]]
    job.delete_bucket(Bucket="ci-run-4711")
    with pytest.raises(ClientError) as outside:
        job.create_bucket(Bucket="cx-run-1")
    assert code_of(outside) == ("AccessDenied", 403)


@pytest.mark.parametrize(
    ("bucket", "problem"),
    [
        ("a", "1 characters long"),
        ("ab", "2 characters long"),
        ("a" * 64, "64 characters long"),
        ("a..b", "two adjacent periods"),
        ("192.168.1.1", "IP address"),
        ("xn--abc", "reserves"),
    ],
)
def test_an_invalid_bucket_name_is_s3s_answer_before_any_grant(
    stack: Stack, bucket: str, problem: str
) -> None:
    for key in (stack.ops, stack.writer):  # with every grant, and with none on it
        with pytest.raises(ClientError) as refused:
            s3_client(stack.url, key).create_bucket(Bucket=bucket)
        assert code_of(refused) == ("InvalidBucketName", 400)
        assert problem in str(refused.value)
        assert "grant" not in str(refused.value)


# -- presigned URLs (SigV4) ------------------------------------------------------------------


def test_a_presigned_get_is_refused_like_a_signed_one(stack: Stack) -> None:
    job = v4(stack, stack.job)
    url = job.generate_presigned_url(
        "get_object", Params={"Bucket": "shared", "Key": "doc.txt"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url
    refused = httpx.get(url)
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text
    assert "no read grant on bucket shared" in refused.text
    granted = job.generate_presigned_url(
        "get_object", Params={"Bucket": "backup-keep", "Key": "old.tar"}, ExpiresIn=300
    )
    assert httpx.get(granted).content == b"kept"
    # A presigned upload needs write, as a signed one does.
    put = job.generate_presigned_url(
        "put_object", Params={"Bucket": "backup-keep", "Key": "sneaky"}, ExpiresIn=300
    )
    assert httpx.put(put, content=b"x").status_code == 403


def _fresh_key(stack: Stack, *grants: str) -> AccessKey:
    with stack.api() as api:
        created = api.post(
            "/access-keys",
            json={"name": "fresh", "grants": dict(grant.split("=") for grant in grants)},
        )
        assert created.status_code == 201, created.text
        body = created.json()
    return AccessKey(body["access_key_id"], body["secret_access_key"], body["id"])


def test_a_presigned_url_stops_working_when_its_grant_is_removed(stack: Stack) -> None:
    key = _fresh_key(stack, "backup-*=read")
    url = v4(stack, key).generate_presigned_url(
        "get_object", Params={"Bucket": "backup-keep", "Key": "old.tar"}, ExpiresIn=300
    )
    assert httpx.get(url).status_code == 200
    with stack.api() as api:
        assert api.delete(f"/access-keys/{key.id}/grants/backup-*").status_code == 200
    refused = httpx.get(url)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text


def test_a_presigned_url_stops_working_when_its_key_is_revoked(stack: Stack) -> None:
    key = _fresh_key(stack, "*=read")
    url = v4(stack, key).generate_presigned_url(
        "get_object", Params={"Bucket": "shared", "Key": "doc.txt"}, ExpiresIn=300
    )
    assert httpx.get(url).content == b"private"
    with stack.api() as api:
        assert api.delete(f"/access-keys/{key.id}").status_code == 200
    refused = httpx.get(url)
    assert refused.status_code == 403 and "<Code>InvalidAccessKeyId</Code>" in refused.text


# -- what a browser and an anonymous client meet ----------------------------------------------


@pytest.fixture(scope="module")
def cors(stack: Stack) -> Stack:
    s3_client(stack.url, stack.ops).put_bucket_cors(
        Bucket="shared",
        CORSConfiguration={
            "CORSRules": [
                {"AllowedOrigins": [ORIGIN], "AllowedMethods": ["GET", "PUT"], "MaxAgeSeconds": 60}
            ]
        },
    )
    return stack


def preflight(**headers: str) -> dict[str, str]:
    return {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", **headers}


# moto answers preflights from the bucket's CORS rules on the bucket's path (an object's
# path gets moto's 403), so the preflights here go to "/shared".
def test_a_preflight_reaches_the_store_and_its_cors_rules(cors: Stack) -> None:
    answer = httpx.options(cors.url + "/shared", headers=preflight())
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    # The methods of the bucket's rule: the store answered, from its rules.
    assert answer.headers["access-control-allow-methods"] == "GET, PUT"
    # The store's rules decide: another origin is not allowed by them.
    other = httpx.options(cors.url + "/shared", headers=preflight(Origin="https://evil.example"))
    assert other.status_code == 403
    assert other.headers.get("access-control-allow-methods") != "GET, PUT"


def test_a_preflight_to_a_presigned_url_is_not_checked_as_a_signature(cors: Stack) -> None:
    url = v4(cors, cors.ops).generate_presigned_url(
        "list_objects_v2", Params={"Bucket": "shared"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url
    answer = httpx.options(url, headers=preflight())
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-methods"] == "GET, PUT"


@pytest.mark.parametrize(
    ("extra", "content"),
    [
        ({"Authorization": "Bearer " + "x" * 40}, None),
        ({"X-API-Key": "ag_" + "x" * 40}, None),
        ({"Cookie": "session=1"}, None),
        ({}, b"smuggled"),
    ],
    ids=["bearer", "api-key", "cookie", "body"],
)
def test_a_preflight_carrying_more_is_judged_as_the_request_it_is(
    cors: Stack, extra: dict[str, str], content: bytes | None
) -> None:
    answer = httpx.request(
        "OPTIONS", cors.url + "/shared", headers=preflight(**extra), content=content
    )
    assert answer.status_code in (401, 403), answer.text
    assert "access-control-allow-origin" not in answer.headers


def test_a_preflight_with_two_origins_is_no_preflight(cors: Stack) -> None:
    headers = [
        ("Origin", ORIGIN),
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "PUT"),
    ]
    answer = httpx.request("OPTIONS", cors.url + "/shared", headers=headers)
    assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text


def test_a_preflight_to_authgates_own_routes_is_not_passed_on(cors: Stack) -> None:
    answer = httpx.options(cors.url + "/authgate/v1/access-keys", headers=preflight())
    assert answer.status_code in (401, 405), answer.text
    assert "access-control-allow-origin" not in answer.headers


def test_an_anonymous_boto3_client_reads_the_public_bucket(stack: Stack) -> None:
    anonymous = s3_client(stack.url, signature_version=UNSIGNED)
    assert anonymous.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow"
    assert anonymous.head_object(Bucket="photos", Key="cat.jpg")["ContentLength"] == 4
    with pytest.raises(ClientError) as put:
        anonymous.put_object(Bucket="photos", Key="dog.jpg", Body=b"woof")
    assert code_of(put) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as private:
        anonymous.get_object(Bucket="shared", Key="doc.txt")
    assert code_of(private) == ("AccessDenied", 403)


def test_curl_sees_s3s_xml_not_a_bearer_challenge(stack: Stack) -> None:
    def curl(*args: str) -> tuple[int, str, str]:
        result = subprocess.run(
            ["curl", "-sS", "-i", *args], capture_output=True, text=True, timeout=30
        )
        head, _, body = result.stdout.partition("\n\n")  # text mode: \r\n read as \n
        return int(head.split()[1]), head.lower(), body

    status, _head, body = curl(stack.url + "/photos/cat.jpg")
    assert (status, body) == (200, "meow")
    status, head, body = curl(stack.url + "/shared/doc.txt")
    assert status == 403
    assert "www-authenticate" not in head and "content-type: application/xml" in head
    assert "<Code>AccessDenied</Code>" in body and "not signed" in body
    status, head, body = curl("-X", "PUT", "--data-binary", "x", stack.url + "/photos/new.jpg")
    assert status == 403 and "<Code>AccessDenied</Code>" in body
    # authgate's own routes keep their JSON and their challenge.
    status, head, body = curl(stack.url + "/authgate/v1/access-keys")
    assert status == 401 and "www-authenticate: bearer" in head
    assert json.loads(body)["code"]
