"""The gateway against a live upstream: what goes through, what is stripped, what is added."""

from __future__ import annotations

import gzip
import http.client
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from authgate.errors import ConfigurationError
from authgate.proxy.gateway import Gateway
from tests.gateway.conftest import TOKEN

AUTH = {"x-api-key": TOKEN}


def seen_headers(response: httpx.Response) -> dict[str, list[str]]:
    """The headers the upstream received, by lower-case name."""
    received: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        received.setdefault(name, []).append(value)
    return received


def raw_request(base: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request with the target sent exactly as given (httpx would normalise it)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        conn.putrequest("GET", target)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_raw_path_and_query_reach_the_upstream_byte_for_byte(gateway_url: str) -> None:
    import json

    target = "/bucket/a//b/%2e%2e/c%2Fd%20e/caf%C3%A9?x=%20y&z&prefix=a%2Fb"
    status, body = raw_request(gateway_url, target, AUTH)
    assert status == 200
    seen = json.loads(body)
    assert seen["raw_path"] == "/bucket/a//b/%2e%2e/c%2Fd%20e/caf%C3%A9"
    assert seen["query"] == "x=%20y&z&prefix=a%2Fb"


def test_identity_headers_replace_anything_the_client_sent(gateway_url: str) -> None:
    response = httpx.get(
        f"{gateway_url}/anything",
        headers=[
            ("x-api-key", TOKEN),
            ("X-Authgate-Key-Id", "admin"),
            ("X-AUTHGATE-SCOPES", "*"),
            ("x-authgate-role", "admin"),
            ("x-authgate-anything", "spoofed"),
        ],
    )
    assert response.status_code == 200
    seen = seen_headers(response)
    assert seen["x-authgate-key-id"] == ["key_0123456789abcdef"]
    assert seen["x-authgate-key-name"] == ["ci-deploy"]
    assert seen["x-authgate-scopes"] == ["packages:read,packages:write"]
    assert "x-authgate-role" not in seen
    assert "x-authgate-anything" not in seen


def test_anonymous_requests_carry_no_identity(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/public/readme", headers={"X-Authgate-Key-Id": "admin"})
    assert response.status_code == 200
    assert not [name for name in seen_headers(response) if name.startswith("x-authgate-")]


def test_authgate_credentials_are_removed_but_other_schemes_pass(gateway_url: str) -> None:
    bearer = httpx.get(
        f"{gateway_url}/x", headers={"x-api-key": TOKEN, "authorization": f"Bearer {TOKEN}"}
    )
    seen = seen_headers(bearer)
    assert "x-api-key" not in seen
    assert "authorization" not in seen

    sigv4 = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "a" * 64
    )
    for value in (sigv4, "Basic dXNlcjpwYXNz"):
        response = httpx.get(
            f"{gateway_url}/x", headers={"x-api-key": TOKEN, "authorization": value}
        )
        assert seen_headers(response)["authorization"] == [value]


def test_forward_credentials_keeps_them(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(upstream_url, forward_credentials=True)
    response = httpx.get(
        f"{url}/x", headers={"x-api-key": TOKEN, "authorization": f"Bearer {TOKEN}"}
    )
    seen = seen_headers(response)
    assert seen["x-api-key"] == [TOKEN]
    assert seen["authorization"] == [f"Bearer {TOKEN}"]


def test_hop_by_hop_headers_stop_at_the_gateway(gateway_url: str) -> None:
    response = httpx.get(
        f"{gateway_url}/x",
        headers={
            **AUTH,
            "connection": "keep-alive, x-private-hop",
            "x-private-hop": "secret",
            "te": "trailers",
            "keep-alive": "timeout=5",
            "proxy-authorization": "Basic abc",
            "x-end-to-end": "kept",
        },
    )
    seen = seen_headers(response)
    for name in ("te", "keep-alive", "proxy-authorization", "x-private-hop"):
        assert name not in seen, name
    assert seen["x-end-to-end"] == ["kept"]
    # And on the way back: no upstream hop-by-hop header reaches the client twice.
    assert response.headers.get_list("date") and len(response.headers.get_list("date")) == 1
    assert len(response.headers.get_list("server")) == 1


def test_host_and_forwarding_headers(gateway_url: str) -> None:
    response = httpx.get(
        f"{gateway_url}/x",
        headers={
            **AUTH,
            "host": "bucket.s3.example.com",
            "x-forwarded-for": "6.6.6.6",
            "x-real-ip": "6.6.6.6",
            "forwarded": "for=6.6.6.6",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "evil.example",
        },
    )
    seen = seen_headers(response)
    assert seen["host"] == ["bucket.s3.example.com"]
    # A client that is not a trusted proxy cannot plant addresses or names.
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    # The upstream already has the client's Host: no X-Forwarded-Host repeating it, and
    # not the one the client made up.
    assert "x-forwarded-host" not in seen
    assert "x-real-ip" not in seen
    assert "forwarded" not in seen


def test_trusted_proxy_chain_is_extended(make_gateway: Any, upstream_url: str) -> None:
    from ipaddress import ip_network

    url = make_gateway(upstream_url, trusted_proxies=[ip_network("127.0.0.0/8")])
    response = httpx.get(
        f"{url}/x",
        headers={
            **AUTH,
            "x-forwarded-for": "203.0.113.9",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "api.example.com",
        },
    )
    seen = seen_headers(response)
    assert seen["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["https"]
    assert seen["x-forwarded-host"] == ["api.example.com"]


def test_host_header_can_be_the_upstreams(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(upstream_url, host_header="upstream")
    response = httpx.get(f"{url}/x", headers={**AUTH, "host": "public.example.com"})
    seen = seen_headers(response)
    assert seen["host"] == [urlsplit(upstream_url).netloc]
    assert seen["x-forwarded-host"] == ["public.example.com"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_methods_and_small_bodies(gateway_url: str, method: str) -> None:
    response = httpx.request(method, f"{gateway_url}/items/1", headers=AUTH, content=b"payload")
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == method
    assert seen["body"] == "payload"
    # aiohttp adds nothing of its own: no invented content type or user agent.
    assert "content-type" not in seen_headers(response)


def test_head_and_statuses_pass_unchanged(gateway_url: str) -> None:
    head = httpx.head(f"{gateway_url}/x", headers=AUTH)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    for code in (201, 204, 302, 304, 404, 418, 500, 503):
        response = httpx.get(f"{gateway_url}/status/{code}", headers=AUTH)
        assert response.status_code == code
        if code == 302:
            # Redirects belong to the client: the gateway does not follow them.
            assert response.headers["location"] == "/elsewhere"


def test_response_headers_and_compressed_bodies_pass_as_they_are(gateway_url: str) -> None:
    plain = httpx.get(f"{gateway_url}/x", headers=AUTH)
    assert plain.headers["x-upstream"] == "yes"
    assert plain.headers["set-cookie"] == "session=abc; Path=/"
    with httpx.stream(
        "GET", f"{gateway_url}/gzip", headers={**AUTH, "accept-encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"compressed bytes stay compressed"


def test_upstream_down_is_a_502_and_the_gateway_keeps_serving(
    make_gateway: Any, upstream_url: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    url = make_gateway(f"http://127.0.0.1:{dead_port}")
    for _ in range(3):
        response = httpx.get(f"{url}/x", headers=AUTH)
        assert response.status_code == 502
        assert response.json() == {
            "detail": "The upstream service cannot be reached.",
            "code": "bad_gateway",
        }
        assert response.headers["content-type"] == "application/json"


def test_upstream_timeout_is_a_504(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(upstream_url, read_timeout=0.3)
    response = httpx.get(f"{url}/slow?seconds=3", headers=AUTH, timeout=10)
    assert response.status_code == 504
    assert response.json()["code"] == "gateway_timeout"
    assert httpx.get(f"{url}/x", headers=AUTH).status_code == 200


def test_garbage_from_the_upstream_is_a_502(make_gateway: Any) -> None:
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"this is not HTTP at all\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    url = make_gateway(f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        response = httpx.get(f"{url}/x", headers=AUTH)
        assert response.status_code == 502
        assert response.json()["code"] == "bad_gateway"
    finally:
        thread.join(timeout=5)
        listener.close()


def test_upstream_ending_mid_body_closes_the_client_connection(
    gateway_url: str, upstream_url: str
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{gateway_url}/broken", headers=AUTH)
    assert httpx.get(f"{gateway_url}/x", headers=AUTH).status_code == 200


def test_upstream_reset_mid_body_closes_the_client_connection(make_gateway: Any) -> None:
    from tests.gateway.upstream import resetting_upstream

    with resetting_upstream() as upstream:
        url = make_gateway(upstream)
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(f"{url}/x", headers=AUTH)


def test_bad_upstream_urls_are_refused() -> None:
    for bad in ("ftp://host", "http://", "http://host/?q=1", "http://user:pw@host", "host:80"):
        with pytest.raises(ConfigurationError):
            Gateway(bad)


def test_upstream_base_path_is_kept(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(f"{upstream_url}/base/")
    response = httpx.get(f"{url}/x/y?z=1", headers=AUTH)
    assert response.json()["raw_path"] == "/base/x/y"
    assert response.json()["query"] == "z=1"


def test_expect_100_continue_upload(gateway_url: str) -> None:
    import subprocess

    result = subprocess.run(
        [
            "curl", "-sS", "-X", "PUT", "--data-binary", "@-",
            "-H", "Expect: 100-continue", "-H", f"X-API-Key: {TOKEN}",
            f"{gateway_url}/upload",
        ],
        input=b"z" * 300_000,
        capture_output=True,
        check=True,
        timeout=30,
    )  # fmt: skip
    import json

    seen = json.loads(result.stdout)
    assert seen["size"] == 300_000
    assert seen["content_length"] == "300000"


def test_session_is_closed_at_shutdown(upstream_url: str) -> None:
    from tests.gateway.conftest import StandInAuth
    from tests.support import live_server

    gateway = Gateway(upstream_url)
    with live_server(StandInAuth(gateway), proxy_headers=False) as url:
        assert httpx.get(f"{url}/x", headers=AUTH).status_code == 200
        assert gateway._session is not None
    assert gateway._session is None


def test_a_client_hanging_up_stops_the_download_upstream(gateway_url: str) -> None:
    from tests.gateway.upstream import EVENTS
    from tests.support import wait_until

    size = 4 * 1024**3  # far more than loopback moves before the test looks
    url = f"{gateway_url}/watched-download?size={size}"
    with httpx.stream("GET", url, headers=AUTH) as response:
        received = 0
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > 1024 * 1024:
                break

    def gone() -> list[int]:
        return [info[1] for kind, info in EVENTS if kind == "download-gone" and info[0] == size]  # type: ignore[index]

    # The gateway noticed the client leave and hung up on the upstream mid-body.
    assert wait_until(lambda: bool(gone()), timeout=30)
    assert gone()[0] < size


def test_https_upstream_is_verified(make_gateway: Any, tmp_path: Any) -> None:
    import ssl

    from authgate.tls import ensure_self_signed
    from tests.gateway.upstream import make_upstream
    from tests.support import live_server

    cert = ensure_self_signed(tmp_path / "tls", ("localhost", "127.0.0.1"))
    with live_server(
        make_upstream(), ssl_certfile=str(cert.cert_file), ssl_keyfile=str(cert.key_file)
    ) as plain:
        upstream = plain.replace("http://", "https://")
        trusting = make_gateway(
            upstream, ssl_context=ssl.create_default_context(cafile=str(cert.cert_file))
        )
        response = httpx.get(f"{trusting}/x", headers=AUTH)
        assert response.status_code == 200
        assert response.json()["raw_path"] == "/x"
        # Not trusted by the system's CAs: refused, never silently accepted.
        default = make_gateway(upstream)
        assert httpx.get(f"{default}/x", headers=AUTH).status_code == 502


def test_the_gateway_adds_no_headers_of_its_own(gateway_url: str) -> None:
    import json

    # http.client sends only Host, Accept-Encoding: identity and what it is given.
    status, body = raw_request(gateway_url, "/bare", {"X-API-Key": TOKEN})
    assert status == 200
    names = {name for name, _ in json.loads(body)["headers"]}
    assert names == {
        "host",
        "accept-encoding",
        "x-authgate-key-id",
        "x-authgate-key-name",
        "x-authgate-scopes",
        "x-forwarded-for",
        "x-forwarded-proto",
    }
    post = httpx.post(f"{gateway_url}/x", headers=AUTH, content=b"no type given")
    assert "content-type" not in {name for name, _ in post.json()["headers"]}


def test_a_request_with_both_framings_goes_upstream_chunked_only(gateway_url: str) -> None:
    # uvicorn refuses such a request outright; another ASGI server might not, and then
    # the gateway must not forward a Content-Length beside the de-chunked body.
    from tests.foundation.helpers import raw_request as send_raw

    request = (
        b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert send_raw(gateway_url, request).status == 400

    scope = {
        "type": "http",
        "headers": [
            (b"host", b"x"),
            (b"content-length", b"3"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1234),
    }
    headers, content_length, chunked = Gateway("http://127.0.0.1:1").upstream_headers(scope)
    assert chunked
    assert content_length is None
    assert "content-length" not in {name for name, _ in headers}
    assert "transfer-encoding" not in {name for name, _ in headers}
