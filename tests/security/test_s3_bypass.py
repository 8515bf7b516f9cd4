"""S3 grant bypasses where authgate and the store read one request two ways.

The real chain: moto's S3 server, a recording hop in front of it (what the store
received), and ``authgate serve --upstream`` twice on one data folder: ``plain`` with no
``s3_base_domains``, ``vhost`` with ``s3.local``. moto is the store that reads a dotted
Host as a virtual-host bucket (its first label), as MinIO does under ``MINIO_DOMAIN``;
it is told that ``s3.local`` itself is its endpoint (``MOTO_S3_CUSTOM_ENDPOINTS``), as
MinIO would be. The attacker's key has ``granted=write`` and nothing on ``secret``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from authgate.manage.keys import Actor
from authgate.proxy.gateway import gateway_from_settings
from authgate.runtime import Runtime
from authgate.s3.listbuckets import ListBucketsFilterError, filter_list_buckets
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.s3.support import REGION, AccessKey, Recorder, moto_server, s3_client
from tests.support import free_port, live_server

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SECRET = b"salary,alice,100000"
ACTOR = Actor("test", source="test")


@dataclass
class Endpoint:
    url: str
    admin: AccessKey  # admin on granted and secret
    attacker: AccessKey  # write on granted, nothing on secret

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Chain:
    plain: Endpoint
    vhost: Endpoint
    recorder: Recorder


@contextmanager
def authgate_gateway(
    root: Path, hop: str, recorder: Recorder, **settings: Any
) -> Iterator[Endpoint]:
    """What ``authgate serve --upstream hop`` runs, in this process."""
    root.mkdir(mode=0o700)
    values = {
        "data_dir": root,
        "upstream_url": hop,
        "localhost_bypass": "off",
        "access_log": False,
        "failure_rate_limit": "100000/minute",
        **settings,
    }
    runtime = Runtime(load_settings(**values))
    runtime.start()
    try:
        keys = []
        for name, grants in (
            ("admin", {"granted": "admin", "secret": "admin"}),
            ("attacker", {"granted": "write"}),
        ):
            made = runtime.access_keys.create(ACTOR, name=name, grants=grants)
            keys.append(
                recorder.add(AccessKey(made.record.access_key_id, made.secret, made.record.id))
            )
        app = build_root_app(runtime, downstream=gateway_from_settings(runtime.settings))
        with live_server(app, proxy_headers=False) as url:
            yield Endpoint(url, *keys)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("bypass")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_S3_CUSTOM_ENDPOINTS", "http://s3.local")
        moto = moto_server(root / "moto", free_port())
        moto_url = moto.__enter__()
    try:
        recorder = Recorder(moto_url)
        with (
            live_server(recorder, proxy_headers=False) as hop,
            authgate_gateway(root / "plain", hop, recorder) as plain,
            authgate_gateway(root / "vhost", hop, recorder, s3_base_domains="s3.local") as vhost,
        ):
            s3 = s3_client(plain.url, plain.admin)
            for bucket in ("granted", "secret"):
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket="granted", Key="own.txt", Body=b"mine")
            for key in ("payroll.csv", "granted/payroll.csv", "granted"):
                s3.put_object(Bucket="secret", Key=key, Body=SECRET)
            yield Chain(plain, vhost, recorder)
    finally:
        moto.__exit__(None, None, None)


# -- requests signed for whatever Host the attacker likes ---------------------------------


def signed(
    key: AccessKey, method: str, host: str, target: str, body: bytes = b"", **extra: str
) -> dict[str, str]:
    """Headers botocore's own signer makes for ``method http://host/target``, signing
    ``host`` exactly as given (the caller sends it as the Host header)."""
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    request = AWSRequest(
        method=method,
        url=f"http://{host}{target}",
        data=body,
        headers={**extra, "Host": host, "X-Amz-Content-SHA256": digest},
    )
    SigV4Auth(Credentials(key.access_key_id, key.secret), "s3", REGION).add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def raw(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request written byte for byte on a socket (repeated headers and all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, _ = data.partition(b"\r\n")
    return int(status_line.split()[1]), data


def request_head(
    method: str, target: str, hosts: list[str], headers: dict[str, str], length: int = 0
) -> str:
    lines = [f"{method} {target} HTTP/1.1", *(f"Host: {host}" for host in hosts)]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines)


def reached_store(chain: Chain, host: str) -> list[Any]:
    return [seen for seen in chain.recorder.seen if seen.headers.get("host") == host]


def exists(chain: Chain, bucket: str, key: str) -> bool:
    try:
        s3_client(chain.plain.url, chain.plain.admin).head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


# -- 1. the bucket from the Host header -----------------------------------------------------

DOTTED_HOSTS = ["secret.example", "secret.example:80", "Secret.Example", "secret.127.0.0.1.nip.io"]


@pytest.mark.parametrize("host", DOTTED_HOSTS)
@pytest.mark.parametrize("target", ["/", "/?acl", "/?versioning", "/?list-type=2"])
def test_a_dotted_host_cannot_list_or_configure_another_bucket(
    chain: Chain, host: str, target: str
) -> None:
    headers = signed(chain.plain.attacker, "GET", host, target)
    response = httpx.get(f"{chain.plain.url}{target}", headers={**headers, "Host": host})
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert b"payroll" not in response.content
    assert b"s3_base_domains" in response.content
    assert reached_store(chain, host) == []


@pytest.mark.parametrize("host", DOTTED_HOSTS)
def test_a_dotted_host_cannot_read_write_or_delete_another_buckets_objects(
    chain: Chain, host: str
) -> None:
    get = signed(chain.plain.attacker, "GET", host, "/granted/payroll.csv")
    read = httpx.get(f"{chain.plain.url}/granted/payroll.csv", headers={**get, "Host": host})
    assert read.status_code == 400
    assert SECRET not in read.content
    put = signed(chain.plain.attacker, "PUT", host, "/granted/planted.txt", b"evil")
    written = httpx.put(
        f"{chain.plain.url}/granted/planted.txt", headers={**put, "Host": host}, content=b"evil"
    )
    assert written.status_code == 400
    delete = signed(chain.plain.attacker, "DELETE", host, "/granted/payroll.csv")
    deleted = httpx.delete(
        f"{chain.plain.url}/granted/payroll.csv", headers={**delete, "Host": host}
    )
    assert deleted.status_code == 400
    assert not exists(chain, "secret", "granted/planted.txt")
    assert exists(chain, "secret", "granted/payroll.csv")
    assert reached_store(chain, host) == []


def test_hosts_no_store_reads_a_bucket_from_still_work(chain: Chain) -> None:
    port = chain.plain.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "authgate"):
        headers = signed(chain.plain.attacker, "GET", host, "/granted/own.txt")
        response = httpx.get(
            f"{chain.plain.url}/granted/own.txt", headers={**headers, "Host": host}
        )
        assert response.status_code == 200, (host, response.text)
        assert response.content == b"mine"
    assert (
        s3_client(chain.plain.url, chain.plain.attacker)
        .get_object(Bucket="granted", Key="own.txt")["Body"]
        .read()
        == b"mine"
    )


def test_base_domains_make_virtual_hosts_and_refuse_two_readings(chain: Chain) -> None:
    # bucket.<base>: the store reads the same bucket authgate granted.
    headers = signed(chain.vhost.attacker, "GET", "granted.s3.local", "/own.txt")
    own = httpx.get(f"{chain.vhost.url}/own.txt", headers={**headers, "Host": "granted.s3.local"})
    assert own.status_code == 200 and own.content == b"mine"
    # The base domain itself is path style, for authgate and for the store.
    headers = signed(chain.vhost.attacker, "GET", "s3.local", "/granted/own.txt")
    own = httpx.get(f"{chain.vhost.url}/granted/own.txt", headers={**headers, "Host": "s3.local"})
    assert own.status_code == 200 and own.content == b"mine"
    # moto reads "secret" of secret.granted.s3.local, MinIO "secret.granted"; a name
    # outside the base domain is read by moto as its first label.
    for host in ("secret.granted.s3.local", "secret.example", "SECRET.s3.local"):
        headers = signed(chain.vhost.attacker, "GET", host, "/payroll.csv")
        refused = httpx.get(f"{chain.vhost.url}/payroll.csv", headers={**headers, "Host": host})
        assert refused.status_code in (400, 403), host
        assert SECRET not in refused.content
        assert reached_store(chain, host) == []


# -- 2. two Host headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("GET", "/payroll.csv", b""),
        ("PUT", "/payroll.csv", b"overwritten"),
        ("DELETE", "/payroll.csv", b""),
    ],
)
def test_two_host_headers_are_refused(chain: Chain, method: str, target: str, body: bytes) -> None:
    headers = signed(chain.vhost.attacker, method, "granted.s3.local", target, body)
    for hosts in (
        ["granted.s3.local", "secret.s3.local"],
        ["granted.s3.local", "granted.s3.local"],
        ["secret.s3.local", "granted.s3.local"],
    ):
        head = request_head(method, target, hosts, headers, len(body))
        status, answer = raw(chain.vhost.port, head, body)
        assert status == 400, answer
        assert SECRET not in answer
    assert reached_store(chain, "secret.s3.local") == []
    s3 = s3_client(chain.plain.url, chain.plain.admin)
    assert s3.get_object(Bucket="secret", Key="payroll.csv")["Body"].read() == SECRET


def test_two_host_headers_on_a_path_style_endpoint_are_refused(chain: Chain) -> None:
    port = chain.plain.port
    host = f"127.0.0.1:{port}"
    headers = signed(chain.plain.attacker, "GET", host, "/granted/payroll.csv")
    head = request_head("GET", "/granted/payroll.csv", [host, "secret.example"], headers)
    status, answer = raw(port, head)
    assert status == 400
    assert SECRET not in answer
    assert reached_store(chain, "secret.example") == []


# -- 3. the copy source ---------------------------------------------------------------------

BAD_COPY_SOURCES = [
    "//granted/secret/payroll.csv",  # moto: netloc "granted", path /secret/...
    "//granted%2Fjunk/secret/payroll.csv",
    "//granted/secret/payroll.csv?versionId=null",
    "granted/../secret/payroll.csv",  # a normalising store reads bucket secret
    "s3:/secret/payroll.csv",
    "granted/own.txt#/../../secret/payroll.csv",
    " /granted/own.txt",
    "gr%61nted/own.txt",
    "/granted/own.txt?versionId=1&x=2",
]


@pytest.mark.parametrize("source", BAD_COPY_SOURCES)
def test_copy_object_takes_s3s_copy_source_form_only(chain: Chain, source: str) -> None:
    s3 = s3_client(chain.plain.url, chain.plain.attacker)
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket="granted", Key="stolen.csv", CopySource=source)
    assert info.value.response["Error"]["Code"] == "InvalidRequest"
    assert not exists(chain, "granted", "stolen.csv")


@pytest.mark.parametrize("source", BAD_COPY_SOURCES[:3])
def test_upload_part_copy_takes_s3s_copy_source_form_only(chain: Chain, source: str) -> None:
    s3 = s3_client(chain.plain.url, chain.plain.attacker)
    upload = s3.create_multipart_upload(Bucket="granted", Key="parts.csv")["UploadId"]
    try:
        with pytest.raises(ClientError) as info:
            s3.upload_part_copy(
                Bucket="granted",
                Key="parts.csv",
                UploadId=upload,
                PartNumber=1,
                CopySource=source,
            )
        assert info.value.response["Error"]["Code"] == "InvalidRequest"
        assert s3.list_parts(Bucket="granted", Key="parts.csv", UploadId=upload).get("Parts") in (
            None,
            [],
        )
    finally:
        s3.abort_multipart_upload(Bucket="granted", Key="parts.csv", UploadId=upload)


# Sent as they are (boto3 would percent-encode them once more).
RAW_COPY_SOURCES = [
    "//granted/secret/payroll.csv",
    "granted/%2E%2E/secret/payroll.csv",
    "granted/%2e/../secret/payroll.csv",
    "gr%61nted/own.txt",
    "granted/own.txt#frag",
    "granted/own.txt;params",
    "/granted/own.txt?versionId=",
    "/granted/own.txt?versionid=1",
    "\\granted/own.txt",
    "granted/own%FF.txt",
]


@pytest.mark.parametrize("source", RAW_COPY_SOURCES)
def test_a_raw_copy_source_header_gets_the_same_answer(chain: Chain, source: str) -> None:
    host = f"127.0.0.1:{chain.plain.port}"
    extra = {"x-amz-copy-source": source}
    headers = signed(chain.plain.attacker, "PUT", host, "/granted/stolen-raw.csv", b"", **extra)
    url = f"{chain.plain.url}/granted/stolen-raw.csv"
    response = httpx.put(url, headers={**headers, "Host": host})
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert not exists(chain, "granted", "stolen-raw.csv")
    assert chain.recorder.for_path("PUT", "/granted/stolen-raw.csv") == []


def test_copies_in_s3s_form_still_work(chain: Chain) -> None:
    s3 = s3_client(chain.plain.url, chain.plain.attacker)
    for source in ("granted/own.txt", "/granted/own.txt", {"Bucket": "granted", "Key": "own.txt"}):
        s3.copy_object(Bucket="granted", Key="copy.txt", CopySource=source)
        assert s3.get_object(Bucket="granted", Key="copy.txt")["Body"].read() == b"mine"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket="granted", Key="x.csv", CopySource="secret/payroll.csv")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


# -- ListBuckets: filtered on the answer's own root element --------------------------------

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


@pytest.mark.parametrize(
    "body",
    [
        # The store read the request as ListObjects of another bucket.
        f"<ListBucketResult {NS}><Name>secret</Name><Contents><Key>payroll.csv</Key>"
        "</Contents></ListBucketResult>",
        # An ACL, a versioning answer: no Bucket element to take out, all shown before.
        f"<AccessControlPolicy {NS}><Owner><ID>secret-owner</ID></Owner></AccessControlPolicy>",
        # A Name the in-place edit would read first, which is not the bucket's name.
        f"<ListAllMyBucketsResult {NS}><Buckets><Bucket><Owner><Name>granted</Name></Owner>"
        "<Name>secret</Name></Bucket></Buckets></ListAllMyBucketsResult>",
        # A Bucket outside Buckets; two Buckets lists.
        f"<ListAllMyBucketsResult {NS}><Owner><Bucket><Name>secret</Name></Bucket></Owner>"
        "</ListAllMyBucketsResult>",
        f"<ListAllMyBucketsResult {NS}><Buckets/><Buckets><Bucket><Name>secret</Name>"
        "</Bucket></Buckets></ListAllMyBucketsResult>",
        # A DTD (entities), which S3 never sends.
        '<!DOCTYPE x [<!ENTITY s "secret">]><ListAllMyBucketsResult><Buckets><Bucket>'
        "<Name>&s;</Name></Bucket></Buckets></ListAllMyBucketsResult>",
    ],
)
def test_a_list_buckets_answer_that_is_not_one_is_not_shown(body: str) -> None:
    with pytest.raises(ListBucketsFilterError):
        filter_list_buckets(body.encode(), {"granted": "write"})


def test_a_list_buckets_answer_keeps_exactly_the_granted_buckets() -> None:
    body = (
        f'<?xml version="1.0"?><ListAllMyBucketsResult {NS}><Owner><ID>o</ID></Owner>'
        "<Buckets><Bucket><Name>granted</Name></Bucket><Bucket><Name>secret</Name>"
        "</Bucket></Buckets></ListAllMyBucketsResult>"
    ).encode()
    filtered = filter_list_buckets(body, {"granted": "write"})
    assert b"<Name>granted</Name>" in filtered and b"secret" not in filtered


def test_list_buckets_through_the_gateway_shows_granted_buckets_only(chain: Chain) -> None:
    listed = s3_client(chain.plain.url, chain.plain.attacker).list_buckets()
    assert [bucket["Name"] for bucket in listed["Buckets"]] == ["granted"]


def test_dotted_hosts_list_nothing_on_the_vhost_endpoint(chain: Chain, tmp_path: Path) -> None:
    headers = signed(chain.vhost.attacker, "GET", "secret.example", "/")
    response = httpx.get(f"{chain.vhost.url}/", headers={**headers, "Host": "secret.example"})
    assert response.status_code == 400
    assert b"payroll" not in response.content
