"""A second instance sharing the store but not the master key: SigV4 requests get S3's
``InternalError`` XML (no traceback, no path of this server's), and the log says which
file to copy where; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.manage.keys import Actor
from authgate.policy import Rule
from authgate.runtime import Runtime
from tests.s3.support import AccessKey
from tests.s3.test_refusals import signed_headers, xml_code
from tests.support import live_server

ACTOR = Actor("tests", source="test")


async def upstream(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"reached the application"})


def test_sigv4_without_the_master_key_is_an_s3_internal_error_and_the_log_says_what_to_copy(
    make_settings: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = Runtime(make_settings(localhost_bypass="off"))
    first.start()
    try:
        created = first.access_keys.create(ACTOR, name="shared", grants={"alpha": "read"})
    finally:
        first.close()
    key = AccessKey(created.record.access_key_id, created.secret, created.record.id)

    own_folder = tmp_path / "second"
    caplog.set_level(logging.INFO)
    second = Runtime(make_settings(data_dir=own_folder, localhost_bypass="off"))
    second.start()  # it starts: the other routes do not need the master key
    wanted = own_folder / "master.key"
    assert not wanted.exists()
    started = caplog.text
    assert f"copy master.key from the instance that created the access keys to {wanted}" in (
        started
    )
    caplog.clear()
    middleware = AuthgateMiddleware(upstream, rules=[Rule("*", "/**")], runtime=second)
    try:
        with live_server(middleware, proxy_headers=False) as url:
            path = "/alpha/report.csv"
            headers = signed_headers(f"{url}{path}", "GET", key, hashlib.sha256(b"").hexdigest())
            response = httpx.get(url + path, headers=headers, timeout=30)
    finally:
        second.close()

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/xml")
    assert xml_code(response) == "InternalError"
    assert b"reached the application" not in response.content
    assert str(own_folder).encode() not in response.content
    assert b"Traceback" not in response.content
    assert "Traceback" not in caplog.text
    assert f"the master key file {wanted} is missing" in caplog.text
    assert "copy master.key" in caplog.text
    assert not wanted.exists()  # never made while the store holds secrets it could not read
