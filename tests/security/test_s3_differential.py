"""What authgate authorised is what the store served: generated hosts, paths and copy
sources, sent byte for byte through the real gateway to moto's S3 server, judged by what
moto itself did, not by a second copy of authgate's parser.

Every object's body is its own ``bucket/key``, so an answer says which object moto read.
The key has ``write`` on ``granted`` only: whatever moto serves or copies must come from
``granted``, and from exactly the bucket (and, for a copy, the key) authgate read.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authgate.s3.grants import bucket_and_key, copy_source_grant, parse_copy_source
from authgate.sigv4 import S3Error
from tests.s3.support import REGION, AccessKey, Recorder, moto_server, s3_client
from tests.security.test_s3_bypass import Endpoint, authgate_gateway, raw, request_head
from tests.support import free_port, live_server

BUCKETS = ("granted", "secret")
KEYS = ("k", "granted/k", "secret/k", "granted", "secret", "a;b", "a#b")
BASES = ("s3.local",)
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Endpoint]]:
    root = tmp_path_factory.mktemp("differential")
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
            for bucket in BUCKETS:
                s3.create_bucket(Bucket=bucket)
                for key in KEYS:
                    s3.put_object(Bucket=bucket, Key=key, Body=f"{bucket}/{key}".encode())
            yield plain, vhost
    finally:
        moto.__exit__(None, None, None)


def signed_head(
    key: AccessKey, method: str, host: str, target: str, extra: dict[str, str] | None = None
) -> str:
    """The request head as botocore signs it, the target and Host exactly as given."""
    headers = {**(extra or {}), "Host": host, "X-Amz-Content-SHA256": hashlib.sha256().hexdigest()}
    request = AWSRequest(method=method, url=f"http://{host}{target}", headers=headers)
    SigV4Auth(Credentials(key.access_key_id, key.secret), "s3", REGION).add_auth(request)
    sent = {name: value for name, value in request.headers.items() if name.lower() != "host"}
    return request_head(method, target, [host], sent)


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


# -- hosts and paths ------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-zA-Z0-9-]{1,10}", fullmatch=True)
HOSTS = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "[::1]",
            "s3.local",
            "granted.s3.local",
            "secret.s3.local",
            "Granted.s3.local",
            "secret.granted.s3.local",
            "granted.secret.s3.local",
            "granted.example",
            "secret.example",
            "secret.s3.local:80",
            "s3.local.",
            "secret",
        ]
    ),
    st.builds(lambda labels: ".".join(labels), st.lists(LABEL, min_size=1, max_size=4)),
    st.builds(lambda label: f"{label}.s3.local", LABEL),
)
SEGMENTS = st.sampled_from(["granted", "secret", "k", "", ".", "..", "%67ranted", "GRANTED"])
TARGETS = st.builds(
    lambda parts, query: "/" + "/".join(parts) + query,
    st.lists(SEGMENTS, max_size=3),
    st.sampled_from(["", "?list-type=2", "?acl", "?location"]),
)
_LISTED_NAME = re.compile(rb"<Name>([^<]*)</Name>")


def authgate_bucket(host: str, target: str) -> str | None:
    path = target.partition("?")[0]
    try:
        return bucket_and_key(path, host, BASES)[0]
    except S3Error:
        return None


@EXAMPLES
@given(host=HOSTS, target=TARGETS, virtual=st.booleans())
@example(host="localhost", target="/granted/k", virtual=False)  # served, and rightly
@example(host="granted.s3.local", target="/k", virtual=True)
@example(host="secret.example", target="/granted/k", virtual=False)  # the case
@example(host="secret.s3.local", target="/granted/k", virtual=False)
def test_what_moto_serves_is_what_authgate_granted(
    endpoints: tuple[Endpoint, Endpoint], host: str, target: str, virtual: bool
) -> None:
    endpoint = endpoints[1] if virtual else endpoints[0]
    status, answer = raw(endpoint.port, signed_head(endpoint.attacker, "GET", host, target))
    if status != 200:
        return  # refused, by authgate or by moto: nothing was served
    body = body_of(answer)
    expected = authgate_bucket(host, target) if virtual else authgate_bucket_plain(host, target)
    if b"<ListAllMyBucketsResult" in body:
        assert _LISTED_NAME.findall(body) == [b"granted"], body
        return
    if body.startswith(b"<"):
        # A bucket's listing names its bucket; a location or ACL answer names none.
        names = _LISTED_NAME.findall(body)
        served = names[0].decode() if b"<ListBucketResult" in body else expected
    else:
        served = body.decode().split("/", 1)[0]
    assert served == "granted", (host, target, body)
    assert served == expected, (host, target, body)


def authgate_bucket_plain(host: str, target: str) -> str | None:
    path = target.partition("?")[0]
    try:
        return bucket_and_key(path, host)[0]
    except S3Error:
        return None


# -- copy sources ---------------------------------------------------------------------------

COPY_SOURCES = st.builds(
    lambda lead, bucket, key, tail: f"{lead}{bucket}/{key}{tail}",
    st.sampled_from(["", "/", "//", "///", " ", "%2F"]),
    st.sampled_from(["granted", "secret", "%67ranted", "granted%2Fsecret", "granted:80", "s3:"]),
    st.sampled_from(
        ["k", "secret/k", "granted/k", "../secret/k", "%2E%2E/secret/k", "a%3Bb", "a%23b"]
    ),
    st.sampled_from(["", "?versionId=null", "?x=1", "#x", ";x", "?versionId=1&versionId=2"]),
)
_DESTINATIONS = itertools.count()


@EXAMPLES
@given(source=COPY_SOURCES)
@example(source="granted/k")  # copied, and rightly
@example(source="//granted/secret/k")  # the case
def test_what_moto_copies_is_what_authgate_granted(
    endpoints: tuple[Endpoint, Endpoint], source: str
) -> None:
    plain = endpoints[0]
    host = f"127.0.0.1:{plain.port}"
    target = f"/granted/copy-{next(_DESTINATIONS)}"
    head = signed_head(plain.attacker, "PUT", host, target, {"x-amz-copy-source": source})
    status, answer = raw(plain.port, head)
    admin = s3_client(plain.url, plain.admin)
    try:
        copied = admin.get_object(Bucket="granted", Key=target.split("/", 2)[2])["Body"].read()
    except ClientError:
        copied = None
    if copied is None:
        return  # refused, by authgate or by moto: nothing was copied
    assert status == 200
    bucket, _, key = copied.decode().partition("/")
    assert bucket == "granted", (source, copied)
    assert bucket == copy_source_grant(source)[0], (source, copied)
    # The value authgate read: HTTP takes the spaces around a header value off.
    read = parse_copy_source(source.strip(" "))
    assert (read.bucket, read.key) == (bucket, key), (source, copied)
