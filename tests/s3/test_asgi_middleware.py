"""``AuthgateMiddleware`` around a small ASGI app on a real uvicorn server: SigV4 beside
API keys, virtual-host-style buckets, rules, the body checked through ``receive``,
ListBuckets filtered or refused, a trusted proxy's host, rate limits and the access log.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.manage.access_keys import access_key_dict
from authgate.manage.keys import Actor
from authgate.policy import Rule
from authgate.proxy.gateway import Gateway
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.s3.support import REGION, AccessKey
from tests.s3.test_refusals import signed_headers, xml_code
from tests.support import free_port, live_server

ACTOR = Actor("tests", source="test")
EMPTY = hashlib.sha256(b"").hexdigest()
RULES = [
    Rule("GET", "/public/**", public=True),
    Rule("*", "/scoped/**", scopes=["reports:read"]),
    Rule("*", "/**"),
]
BUCKETS_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Owner><ID>o</ID></Owner><Buckets>"
    b"<Bucket><Name>alpha</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>"
    b"<Bucket><Name>beta</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>"
    b"<Bucket><Name>gamma</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>"
    b"</Buckets></ListAllMyBucketsResult>"
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Echoes what it was given; ``/swallow/...`` hides a failed read and answers 200."""
    if scope["type"] != "http":
        return
    body = b""
    try:
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
    except Exception:
        if not scope["path"].startswith("/swallow"):
            raise
    headers = dict(scope["headers"])
    if scope["path"] == "/":
        content = BUCKETS_XML
        extra = [(b"content-type", b"application/xml")]
        if b"x-test-gzip" in headers:
            content = gzip.compress(content)
            extra.append((b"content-encoding", b"gzip"))
    else:
        principal = scope.get("authgate.principal")
        content = json.dumps(
            {
                "raw_path": scope["raw_path"].decode(),
                "key": principal.id if principal else None,
                "kind": principal.kind if principal else None,
                "grants": principal.grants if principal else None,
                "size": len(body),
                "sigv4": scope.get("authgate.sigv4") is not None,
            }
        ).encode()
        extra = [(b"content-type", b"application/json")]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(content)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": content})


@dataclass
class Served:
    url: str
    runtime: Runtime
    key: AccessKey
    api_key: str


def _served(root: Path, **settings: Any) -> Iterator[Served]:
    values = {
        "data_dir": root,
        "localhost_bypass": "off",
        "s3_base_domains": "s3.test",
        **settings,
    }
    runtime = Runtime(load_settings(**values))
    runtime.start()
    created = runtime.access_keys.create(
        ACTOR, name="vh", grants={"alpha": "read", "gamma": "write"}
    )
    key = AccessKey(created.record.access_key_id, created.secret, created.record.id)
    api_key = runtime.keys.create(ACTOR, name="api", scopes=["read"]).token
    middleware = AuthgateMiddleware(app, rules=RULES, runtime=runtime)
    try:
        with live_server(middleware, proxy_headers=False) as url:
            yield Served(url, runtime, key, api_key)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _served(tmp_path_factory.mktemp("plain"), failure_rate_limit="3/day")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _served(
        tmp_path_factory.mktemp("proxied"), trusted_proxies="127.0.0.1", list_buckets="deny"
    )


def signed(
    served: Served, method: str, host: str, path: str, body: bytes = b"", **extra: str
) -> httpx.Response:
    headers = signed_headers(
        f"http://{host}{path}", method, served.key, hashlib.sha256(body).hexdigest()
    )
    headers.update(extra, Host=host)
    return httpx.request(method, served.url + path, headers=headers, content=body)


def test_virtual_host_buckets_and_their_grants(plain: Served) -> None:
    read = signed(plain, "GET", "alpha.s3.test", "/photos/cat.jpg")
    assert read.status_code == 200
    assert read.json() == {
        "raw_path": "/photos/cat.jpg",
        "key": plain.key.id,
        "kind": "access_key",
        "grants": {"alpha": "read", "gamma": "write"},
        "size": 0,
        "sigv4": True,
    }
    assert xml_code(signed(plain, "GET", "beta.s3.test", "/photos/cat.jpg")) == "AccessDenied"
    assert xml_code(signed(plain, "PUT", "alpha.s3.test", "/new.txt", b"x")) == "AccessDenied"
    written = signed(plain, "PUT", "gamma.s3.test", "/new.txt", b"hello")
    assert written.json()["size"] == 5
    # Path style on the same server: the first segment is the bucket.
    assert signed(plain, "GET", "s3.test", "/alpha/photos/cat.jpg").status_code == 200


def raw_get(served: Served, host: str, path: str) -> tuple[int, bytes]:
    """A GET of exactly this path (no client clean-up), signed as S3 signs it."""
    request = AWSRequest(method="GET", url=f"http://{host}{path}")
    credentials = Credentials(served.key.access_key_id, served.key.secret)
    S3SigV4Auth(credentials, "s3", REGION).add_auth(request)
    connection = http.client.HTTPConnection(served.url.removeprefix("http://"))
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_path_reaches_the_app_as_signed(plain: Served) -> None:
    # S3 keys may hold '//' and dot segments; S3 signs and reads the path as sent.
    status, body = raw_get(plain, "s3.test", "/alpha/a//b/./c")
    assert status == 200
    assert json.loads(body)["raw_path"] == "/alpha/a//b/./c"
    # Rules see the canonical path: it may not name another bucket than the store will.
    for path in ("/beta/../alpha/x", "//alpha/x", "/alpha/../beta/x"):
        status, body = raw_get(plain, "s3.test", path)
        assert status == 403, path
        assert b"<Code>AccessDenied</Code>" in body


def test_api_keys_and_sigv4_side_by_side(plain: Served) -> None:
    by_key = httpx.get(f"{plain.url}/reports/1", headers={"X-API-Key": plain.api_key})
    assert by_key.status_code == 200
    assert by_key.json()["kind"] == "api_key"
    assert by_key.json()["sigv4"] is False
    assert signed(plain, "GET", "alpha.s3.test", "/reports/1").json()["kind"] == "access_key"
    refused = httpx.get(f"{plain.url}/reports/1", headers={"X-API-Key": "ag_" + "z" * 40})
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_rules_meet_access_keys(plain: Served) -> None:
    # A valid access key is authenticated, but carries no scopes.
    scoped = signed(plain, "GET", "alpha.s3.test", "/scoped/report")
    assert scoped.status_code == 403
    assert xml_code(scoped) == "AccessDenied"
    # On a public rule a signature that fails is ignored, as a bad token would be.
    headers = signed_headers("http://alpha.s3.test/public/x", "GET", plain.key, EMPTY)
    headers["Host"] = "alpha.s3.test"
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    public = httpx.get(f"{plain.url}/public/x", headers=headers)
    assert public.status_code == 200
    assert public.json()["key"] is None


def test_the_body_is_checked_as_the_app_reads_it(plain: Served) -> None:
    body = b"the body that was signed"
    for path in ("/plain.bin", "/swallow/it.bin"):
        headers = signed_headers(
            f"http://gamma.s3.test{path}", "PUT", plain.key, hashlib.sha256(body).hexdigest()
        )
        headers["Host"] = "gamma.s3.test"
        bad = httpx.put(plain.url + path, headers=headers, content=body.upper())
        assert bad.status_code == 400, path
        assert xml_code(bad) == "XAmzContentSHA256Mismatch"
        good = httpx.put(plain.url + path, headers=headers, content=body)
        assert good.json()["size"] == len(body)
    # No body at all, where one was signed: refused before the app runs.
    headers = signed_headers(
        "http://gamma.s3.test/empty", "PUT", plain.key, hashlib.sha256(body).hexdigest()
    )
    headers["Host"] = "gamma.s3.test"
    assert xml_code(httpx.put(f"{plain.url}/empty", headers=headers)) == "XAmzContentSHA256Mismatch"


def test_list_buckets_is_filtered(plain: Served) -> None:
    listed = signed(plain, "GET", "s3.test", "/")
    assert listed.status_code == 200
    assert b"<Name>alpha</Name>" in listed.content
    assert b"<Name>gamma</Name>" in listed.content
    assert b"beta" not in listed.content
    assert listed.headers["content-length"] == str(len(listed.content))
    zipped = signed(plain, "GET", "s3.test", "/", b"", **{"x-test-gzip": "1"})
    assert b"beta" not in zipped.content and b"<Name>alpha</Name>" in zipped.content
    assert "content-encoding" not in zipped.headers


def test_list_buckets_can_be_refused(proxied: Served) -> None:
    refused = signed(proxied, "GET", "s3.test", "/")
    assert refused.status_code == 403
    assert xml_code(refused) == "AccessDenied"


def test_a_trusted_proxys_host_stands_in(plain: Served, proxied: Served) -> None:
    for served, expected in ((proxied, 200), (plain, 403)):
        headers = signed_headers("http://s3.test/alpha/via-proxy", "GET", served.key, EMPTY)
        headers["Host"] = "authgate:8080"
        headers["X-Forwarded-Host"] = "s3.test"
        response = httpx.get(f"{served.url}/alpha/via-proxy", headers=headers)
        assert response.status_code == expected
        if expected == 403:
            assert xml_code(response) == "SignatureDoesNotMatch"


def test_a_proxys_host_that_names_another_bucket_is_refused(proxied: Served) -> None:
    # Signed for bucket alpha (virtual host); the app behind reads the Host it gets,
    # where alpha is not named: the grant would be checked on the wrong bucket.
    headers = signed_headers("http://alpha.s3.test/via-proxy", "GET", proxied.key, EMPTY)
    headers["Host"] = "authgate:8080"
    headers["X-Forwarded-Host"] = "alpha.s3.test"
    response = httpx.get(f"{proxied.url}/via-proxy", headers=headers)
    assert response.status_code == 403
    assert xml_code(response) == "AccessDenied"


def test_failed_signatures_are_rate_limited_and_logged(
    plain: Served, caplog: pytest.LogCaptureFixture
) -> None:
    plain.runtime.limiter.reset()
    caplog.set_level(logging.INFO, logger="authgate.access")
    headers = signed_headers("http://alpha.s3.test/guess", "GET", plain.key, EMPTY)
    headers["Host"] = "alpha.s3.test"
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    codes = [xml_code(httpx.get(f"{plain.url}/guess", headers=headers)) for _ in range(4)]
    assert codes == ["SignatureDoesNotMatch"] * 3 + ["SlowDown"]
    limited = httpx.get(f"{plain.url}/guess", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    # A valid key from the same address still passes.
    assert signed(plain, "GET", "alpha.s3.test", "/guess").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "authgate.access"]
    assert any('"GET /guess" 403 Auth: no key=-' in line for line in lines)
    assert any('"GET /guess" 429 Auth: no key=-' in line for line in lines)
    assert any(f'"GET /guess" 200 Auth: yes key={plain.key.id}' in line for line in lines)
    assert not any(plain.key.secret in line for line in lines)


def test_the_gateways_own_failures_reach_s3_clients_as_xml(tmp_path: Path) -> None:
    runtime = Runtime(
        load_settings(data_dir=tmp_path, localhost_bypass="off", s3_base_domains="s3.test")
    )
    runtime.start()
    try:
        created = runtime.access_keys.create(ACTOR, name="gw", grants={"alpha": "read"})
        key = AccessKey(created.record.access_key_id, created.secret, created.record.id)
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        middleware = AuthgateMiddleware(Gateway(dead), runtime=runtime)
        with live_server(middleware, proxy_headers=False) as url:
            served = Served(url, runtime, key, "")
            response = signed(served, "GET", "s3.test", "/alpha/x")
    finally:
        runtime.close()
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/xml"
    assert xml_code(response) == "InternalError"


def test_forward_auth_passes_reads_and_refuses_what_it_cannot_check(tmp_path: Path) -> None:
    runtime = Runtime(
        load_settings(data_dir=tmp_path, localhost_bypass="off", s3_base_domains="s3.test")
    )
    runtime.start()
    try:
        created = runtime.access_keys.create(ACTOR, name="fa", grants={"alpha": "write"})
        key = AccessKey(created.record.access_key_id, created.secret, created.record.id)
        with live_server(build_root_app(runtime), proxy_headers=False) as url:

            def ask(method: str, path: str, body: bytes = b"") -> httpx.Response:
                digest = hashlib.sha256(body).hexdigest()
                headers = signed_headers(f"http://s3.test{path}", method, key, digest)
                headers.update(
                    {"Host": "s3.test", "X-Original-Method": method, "X-Original-URI": path}
                )
                return httpx.get(f"{url}/authgate/v1/verify", headers=headers)

            read = ask("GET", "/alpha/x.txt")
            assert read.status_code == 200
            assert read.headers["x-authgate-key-id"] == key.id
            assert ask("DELETE", "/alpha/x.txt").status_code == 200
            # The proxy would forward a signed body unchecked, or an unfiltered list.
            assert ask("PUT", "/alpha/x.txt", b"body").status_code == 403
            assert ask("GET", "/").status_code == 403
            assert ask("GET", "/beta/x.txt").status_code == 403
    finally:
        runtime.close()


def test_a_verified_access_key_records_its_last_use(plain: Served) -> None:
    before = plain.runtime.store.get_access_key(plain.key.access_key_id)
    assert before is not None
    assert signed(plain, "GET", "alpha.s3.test", "/photos/dog.jpg").status_code == 200
    plain.runtime.flush_usage()
    after = plain.runtime.store.get_access_key(plain.key.access_key_id)
    assert after is not None and after.last_used_at is not None
    assert before.last_used_at is None or after.last_used_at > before.last_used_at
    assert access_key_dict(after)["last_used_at"] == after.last_used_at.isoformat()
