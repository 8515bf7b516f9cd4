"""Every number the API takes is bounded: huge, negative and non-numeric values get the
422 ``{"detail", "code"}`` answer, never a 500 (a 64-bit overflow in the store), on
SQLite and PostgreSQL.

The numeric parameters are read from the OpenAPI document, so one added later is
attacked too, and must declare both bounds to pass.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api import conftest as api_fixtures
from tests.api.service import Service
from tests.security.openapi_parameters import openapi_of, parameters_of

REFUSED = [
    "34859866355752599552",  # the value that overflowed SQLite's integer binding
    "-34859866355752599552",
    str(2**63),  # one past PostgreSQL's bigint and SQLite's integer
    str(2**64 + 1),
    "9" * 5000,  # more digits than Python converts by default
    "-1000000000000",
    "1e400",
    "1.5",
    "NaN",
    "Infinity",
    "0x10",
    "abc",
    "",
    "１２",  # full-width digits: a number to some readers, not to others
]


make_service = api_fixtures.make_service


@pytest.fixture
def api(make_service: Any) -> Service:
    """A started runtime on each back end behind a live server."""
    service: Service = make_service()
    return service


def numeric_parameters(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return parameters_of(openapi, {"integer", "number"})


def numeric_schema(parameter: dict[str, Any]) -> dict[str, Any]:
    """The schema that holds the number's bounds: the parameter's own, or, for an optional
    number (``anyOf`` with null), its numeric option."""
    schema: dict[str, Any] = parameter["schema"]
    options: list[dict[str, Any]] = [schema, *schema.get("anyOf", [])]
    for option in options:
        if option.get("type") in ("integer", "number"):
            return option
    raise AssertionError(f"{parameter['name']}: no numeric schema in {schema}")


def test_every_numeric_parameter_declares_both_bounds(api: Service) -> None:
    found = numeric_parameters(openapi_of(api))
    names = {(path, parameter["name"]) for _, path, parameter in found}
    assert {("/authgate/v1/audit", "limit"), ("/authgate/v1/audit", "offset")} <= names
    for method, path, parameter in found:
        schema = numeric_schema(parameter)
        assert "minimum" in schema, f"{method} {path} {parameter['name']}: no minimum"
        assert "maximum" in schema, f"{method} {path} {parameter['name']}: no maximum"
        # Within what a 64-bit column or OFFSET can take, with room for a page beyond.
        assert schema["maximum"] < 2**62


def assert_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "invalid_request"
    assert any(problem["loc"][-1] == name for problem in body["errors"]), body
    assert f"parameter {name}: " in body["detail"], body
    assert "Traceback" not in response.text


@pytest.mark.parametrize("value", REFUSED)
def test_a_bad_number_in_any_parameter_is_a_422(api: Service, value: str) -> None:
    found = numeric_parameters(openapi_of(api))
    assert found
    for method, path, parameter in found:
        name = parameter["name"]
        if parameter["in"] == "query":
            url, params = path.removeprefix("/authgate/v1"), {name: value}
        else:
            url, params = path.replace("{" + name + "}", value), {}
        response = api.client.request(method.upper(), url, params=params, headers=api.admin)
        assert_refused(response, name)


@pytest.mark.parametrize(
    ("name", "value"), [("offset", 2**53 + 1), ("offset", -1), ("limit", 0), ("limit", 1001)]
)
def test_just_past_each_audit_bound_is_a_422(api: Service, name: str, value: int) -> None:
    response = api.client.get("/audit", params={name: value}, headers=api.admin)
    assert_refused(response, name)


def test_the_largest_offset_allowed_is_answered_with_an_empty_page(api: Service) -> None:
    response = api.client.get("/audit", params={"offset": 2**53}, headers=api.admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"events": [], "next_offset": None}


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**40])
def test_a_huge_number_in_a_json_body_is_a_422(api: Service, value: int) -> None:
    created = api.client.post("/tokens", json={"name": "svc"}, headers=api.admin)
    assert created.status_code == 201, created.text
    attempts = [
        ("/tokens", {"name": "other", "expires_in_days": value}),
        (f"/tokens/{created.json()['id']}/rotate", {"grace_seconds": value}),
    ]
    for url, body in attempts:
        response = api.client.post(url, json=body, headers=api.admin)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_request"
