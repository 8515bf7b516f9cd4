"""The upstream examples in docs/gateway.md's "Signed identity for the upstream" run as
printed and refuse a request that carries no assertion."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.support import live_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def _examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Signed identity for the upstream", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_both_examples_are_there() -> None:
    assert len(_examples()) == 2


def test_the_fastapi_example_refuses_a_request_without_an_assertion() -> None:
    app = _run(_examples()[0])["app"]
    with live_server(app) as url:
        answer = httpx.get(f"{url}/orders", timeout=10)
    assert answer.status_code == 401
    assert answer.json()["detail"]["code"] == "invalid_assertion"


def test_the_wsgi_example_refuses_a_request_without_an_assertion() -> None:
    app = _run(_examples()[1])["app"]
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://upstream") as client:
        answer = client.get("/orders")
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_assertion"
