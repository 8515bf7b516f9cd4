"""``AuthgateMiddleware`` around a recording ASGI app on a real uvicorn server: the form
of a POST policy upload reaches the app byte for byte, a failed policy never reaches it
(a public rule included), and a file past its range fails the app's read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.manage.keys import Actor
from authgate.policy import Rule
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.s3.post_support import s3_code
from tests.s3.support import REGION, AccessKey
from tests.support import live_server

ACTOR = Actor("tests", source="test")
RULES = [Rule("POST", "/open", public=True), Rule("*", "/**")]


@dataclass
class Recorder:
    bodies: list[bytes] = field(default_factory=list)
    principals: list[Any] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        self.principals.append(scope.get("authgate.principal"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Served:
    url: str
    key: AccessKey
    app: Recorder


def _served(root: Path, **settings: Any) -> Iterator[Served]:
    runtime = Runtime(load_settings(data_dir=root, localhost_bypass="off", **settings))
    runtime.start()
    created = runtime.access_keys.create(ACTOR, name="web", grants={"gamma": "write"})
    key = AccessKey(created.record.access_key_id, created.secret, created.record.id)
    recorder = Recorder()
    middleware = AuthgateMiddleware(recorder, rules=RULES, runtime=runtime)
    try:
        with live_server(middleware, proxy_headers=False) as url:
            yield Served(url, key, recorder)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _served(tmp_path_factory.mktemp("post-mw"))


@pytest.fixture(scope="module")
def turned_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _served(tmp_path_factory.mktemp("post-mw-off"), s3_post_policy=False)


def form(served: Served, bucket: str, conditions: list[Any] | None = None) -> dict[str, Any]:
    client = boto3.client(
        "s3",
        endpoint_url=served.url,
        aws_access_key_id=served.key.access_key_id,
        aws_secret_access_key=served.key.secret,
        region_name=REGION,
        config=Config(signature_version="s3v4"),
    )
    post: dict[str, Any] = client.generate_presigned_post(bucket, "k", Conditions=conditions)
    return post


def prepared(url: str, fields: dict[str, str], content: bytes) -> requests.PreparedRequest:
    return requests.Request("POST", url, data=fields, files={"file": ("a", content)}).prepare()


def test_the_app_receives_the_form_byte_for_byte(served: Served) -> None:
    post = form(served, "gamma")
    request = prepared(post["url"], post["fields"], b"\x00\r\n--" + bytes(range(256)) * 300)
    assert isinstance(request.body, bytes)
    before = len(served.app.bodies)
    response = requests.Session().send(request, timeout=30)
    assert response.status_code == 204, response.text
    assert len(served.app.bodies) == before + 1
    sent = hashlib.sha256(request.body).hexdigest()
    assert hashlib.sha256(served.app.bodies[-1]).hexdigest() == sent
    principal = served.app.principals[-1]
    assert (principal.kind, principal.id) == ("access_key", served.key.id)


def test_a_failed_policy_never_reaches_the_app_even_on_a_public_rule(served: Served) -> None:
    post = form(served, "open")
    fields = {**post["fields"], "x-amz-signature": "0" * 64}
    before = len(served.app.bodies)
    response = requests.Session().send(prepared(f"{served.url}/open", fields, b"x"), timeout=30)
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"
    # Signed right, but without a grant on the public rule's bucket: refused too.
    post = form(served, "open")
    response = requests.Session().send(prepared(post["url"], post["fields"], b"x"), timeout=30)
    assert (response.status_code, s3_code(response)) == (403, "AccessDenied")
    assert len(served.app.bodies) == before


def test_a_file_past_its_range_fails_the_apps_read(served: Served) -> None:
    post = form(served, "gamma", [["content-length-range", 1, 1000]])
    before = len(served.app.bodies)
    # Larger than the fields' read-ahead, so the app is the one that meets the refusal.
    request = prepared(post["url"], post["fields"], b"z" * (4 * 1024 * 1024))
    response = requests.Session().send(request, timeout=30)
    assert response.status_code == 400
    assert s3_code(response) == "EntityTooLarge"
    assert len(served.app.bodies) == before


def test_turned_off_a_policy_form_is_anonymous(turned_off: Served) -> None:
    post = form(turned_off, "gamma")
    response = requests.Session().send(prepared(post["url"], post["fields"], b"x"), timeout=30)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_credentials"
