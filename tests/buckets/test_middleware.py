"""``s3_paths`` in ``AuthgateMiddleware`` on a real uvicorn server: the same gate as the
gateway's, so preflights reach the app and unsigned refusals are S3's XML there too;
without ``s3_paths`` nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.policy import Rule
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.support import live_server

RULES = [Rule("GET", "/photos/**", public=True), Rule("*", "/**")]
PREFLIGHT = {"Origin": "https://app.example.org", "Access-Control-Request-Method": "PUT"}


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = f"app saw {scope['method']}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _serve(root: Path, **settings: Any) -> Iterator[str]:
    runtime = Runtime(load_settings(data_dir=root, localhost_bypass="off", **settings))
    runtime.start()
    try:
        with live_server(AuthgateMiddleware(app, rules=RULES, runtime=runtime)) as url:
            yield url
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("s3"), s3_paths="/**")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("plain"))


def test_on_s3_paths_preflights_pass_and_refusals_are_xml(s3: str) -> None:
    passed = httpx.options(s3 + "/shared", headers=PREFLIGHT)
    assert (passed.status_code, passed.text) == (200, "app saw OPTIONS")
    refused = httpx.get(s3 + "/shared/doc.txt")
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text
    assert "www-authenticate" not in refused.headers
    head = httpx.head(s3 + "/shared/doc.txt")
    assert (head.status_code, head.content) == (403, b"")
    assert httpx.get(s3 + "/photos/cat.jpg").text == "app saw GET"


def test_without_s3_paths_nothing_changes(plain: str) -> None:
    preflight = httpx.options(plain + "/shared", headers=PREFLIGHT)
    assert preflight.status_code == 401
    refused = httpx.get(plain + "/shared/doc.txt")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["code"]
