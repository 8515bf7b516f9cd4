"""The per-request body check hook (what SigV4 payload verification plugs into)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
from starlette.types import Scope

from authgate.errors import AuthgateError, Forbidden, InvalidCredentials
from authgate.proxy.gateway import BodyCheck
from tests.gateway.conftest import TOKEN
from tests.gateway.upstream import EVENTS

AUTH = {"x-api-key": TOKEN}


class DigestCheck:
    """Refuses a body whose SHA-256 differs from the x-expected-sha256 header, or that is
    longer than x-max-bytes (checked as the chunks arrive)."""

    def __init__(self, expected: str, max_bytes: int | None) -> None:
        self.expected = expected
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        self.finished = False

    def feed(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise Forbidden("The body is longer than allowed.")

    def finish(self) -> None:
        self.finished = True
        if self.digest.hexdigest() != self.expected:
            raise InvalidCredentials("The body does not match its signature.")


def digest_checks(scope: Scope) -> BodyCheck | None:
    headers = dict(scope["headers"])
    expected = headers.get(b"x-expected-sha256")
    if expected is None:
        return None
    limit = headers.get(b"x-max-bytes")
    return DigestCheck(expected.decode(), int(limit) if limit else None)


def chunks(count: int, size: int = 256 * 1024) -> Any:
    for index in range(count):
        yield bytes([index % 256]) * size


def digest_of(count: int, size: int = 256 * 1024) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(count, size):
        digest.update(chunk)
    return digest.hexdigest()


def uploads_of(size: int) -> int:
    return EVENTS.count(("upload", size))


def test_a_matching_streamed_body_reaches_the_upstream(
    make_gateway: Any, upstream_url: str
) -> None:
    url = make_gateway(upstream_url, body_check=digest_checks)
    size = 40 * 256 * 1024
    headers = {**AUTH, "x-expected-sha256": digest_of(40), "content-length": str(size)}
    response = httpx.put(f"{url}/upload", headers=headers, content=chunks(40))
    assert response.status_code == 200
    assert response.json()["size"] == size
    assert response.json()["sha256"] == digest_of(40)


def test_a_mismatched_body_never_completes_upstream(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(upstream_url, body_check=digest_checks)
    size = 41 * 256 * 1024
    before = uploads_of(size)
    for framing in ({"content-length": str(size)}, {}):
        headers = {**AUTH, "x-expected-sha256": "0" * 64, **framing}
        response = httpx.put(f"{url}/upload", headers=headers, content=chunks(41))
        assert response.status_code == 401
        assert response.json() == {
            "detail": "The body does not match its signature.",
            "code": "invalid_token",
        }
    time.sleep(0.2)
    # The last chunk was held back until the check passed, so the upstream never had
    # the whole body and never completed the upload.
    assert uploads_of(size) == before
    assert httpx.get(f"{url}/x", headers=AUTH).status_code == 200


def test_a_check_can_refuse_mid_stream(make_gateway: Any, upstream_url: str) -> None:
    url = make_gateway(upstream_url, body_check=digest_checks)
    headers = {**AUTH, "x-expected-sha256": digest_of(30), "x-max-bytes": str(1024 * 1024)}
    response = httpx.put(f"{url}/upload", headers=headers, content=chunks(30))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_small_and_empty_bodies_are_checked_before_anything_is_sent(
    make_gateway: Any, upstream_url: str
) -> None:
    url = make_gateway(upstream_url, body_check=digest_checks)
    empty = hashlib.sha256(b"").hexdigest()
    assert httpx.get(f"{url}/x", headers={**AUTH, "x-expected-sha256": empty}).status_code == 200
    refused = httpx.get(f"{url}/x", headers={**AUTH, "x-expected-sha256": "1" * 64})
    assert refused.status_code == 401
    small = b"tiny body"
    ok = httpx.put(
        f"{url}/upload",
        headers={**AUTH, "x-expected-sha256": hashlib.sha256(small).hexdigest()},
        content=small,
    )
    assert ok.status_code == 200
    bad = httpx.put(f"{url}/upload", headers={**AUTH, "x-expected-sha256": empty}, content=small)
    assert bad.status_code == 401


def test_errors_can_be_rendered_another_way(make_gateway: Any, upstream_url: str) -> None:
    def as_xml(scope: Scope, error: AuthgateError) -> tuple[int, list[tuple[str, str]], bytes]:
        body = (
            f"<Error><Code>{error.code}</Code><Method>{scope['method']}</Method></Error>".encode()
        )
        return error.status, [("content-type", "application/xml")], body

    url = make_gateway(upstream_url, body_check=digest_checks, render_error=as_xml)
    response = httpx.put(
        f"{url}/upload", headers={**AUTH, "x-expected-sha256": "2" * 64}, content=b"abc"
    )
    assert response.status_code == 401
    assert response.text == "<Error><Code>invalid_token</Code><Method>PUT</Method></Error>"
