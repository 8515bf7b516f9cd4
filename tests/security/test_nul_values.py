"""A NUL character (U+0000) is text to Python and SQLite and a value PostgreSQL refuses. It
once reached PostgreSQL from any id, email or filter and came back as "the store cannot be
reached" (503), and each such answer counted against the store's breaker: three requests
from anyone, a login attempt among them, shut the store for every caller. Now it is the
caller's 4xx on both back ends (or, for a filter, a listing nothing matches), and the
store keeps answering everyone else.

The text parameters are read from the OpenAPI document, so one added later is sent a NUL
too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api import conftest as api_fixtures
from tests.api.service import PASSWORD, Service
from tests.console.attack import CONSOLE, csrf_of
from tests.security.openapi_parameters import openapi_of, parameters_of

NUL = "a\x00b"


make_service = api_fixtures.make_service


@pytest.fixture
def api(make_service: Any) -> Service:
    service: Service = make_service(localhost_bypass="off")
    return service


def text_parameters(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every string parameter of the REST API (not the console's pages)."""
    found = parameters_of(openapi, {"string"})
    return [
        (method, path, found) for method, path, found in found if path.startswith("/authgate/v1/")
    ]


def send_nul(api: Service, method: str, path: str, parameter: dict[str, Any]) -> httpx.Response:
    name = parameter["name"]
    url = path.removeprefix("/authgate/v1")
    params: dict[str, str] = {"limit": "10"} if url == "/tokens" else {}
    if parameter["in"] == "query":
        params[name] = NUL
    else:
        url = url.replace("{" + name + "}", "a%00b")
    url = url.replace("{", "").replace("}", "")  # any other path parameter: its name
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    return api.client.request(method.upper(), url, params=params, json=body, headers=api.admin)


def assert_the_store_still_answers(api: Service) -> None:
    # An uncached read: it reaches the store, so an open breaker would make it a 503.
    listed = api.client.get("/users", headers=api.admin)
    assert listed.status_code == 200, listed.text
    ready = httpx.get(f"{api.base_url}/authgate/v1/ready", timeout=30)
    assert ready.status_code == 200, ready.text


def test_a_nul_in_any_text_parameter_is_never_a_5xx(api: Service) -> None:
    found = text_parameters(openapi_of(api))
    names = {(path, parameter["name"]) for _, path, parameter in found}
    assert {("/authgate/v1/tokens/{key_id}", "key_id"), ("/authgate/v1/audit", "actor")} <= names
    for method, path, parameter in found:
        response = send_nul(api, method, path, parameter)
        where = (method, path, parameter["name"], response.text)
        if parameter["in"] == "path":
            assert 400 <= response.status_code < 500, where
        else:
            assert response.status_code < 500, where
        assert response.headers["content-type"].startswith("application/json")
        assert "Traceback" not in response.text
    assert_the_store_still_answers(api)


def test_a_nul_in_a_login_is_refused_and_shuts_nothing(api: Service) -> None:
    api.user("ivan@example.com")
    for _ in range(5):
        refused = api.client.post("/tokens", json={"email": NUL, "password": PASSWORD})
        assert 400 <= refused.status_code < 500, refused.text
    assert_the_store_still_answers(api)
    assert api.login("ivan@example.com")["token"]


def test_a_nul_in_the_consoles_login_form_is_refused_and_shuts_nothing(api: Service) -> None:
    with httpx.Client(base_url=api.base_url, timeout=30, follow_redirects=False) as browser:
        for _ in range(5):
            page = browser.get(f"{CONSOLE}/login")
            form = {"csrf": csrf_of(page), "identity": NUL, "password": PASSWORD}
            refused = browser.post(f"{CONSOLE}/login", data=form)
            assert 400 <= refused.status_code < 500, refused.text
    assert_the_store_still_answers(api)
