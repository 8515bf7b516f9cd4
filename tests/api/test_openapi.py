"""The OpenAPI document: security schemes, request bodies and every status code per route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.service import Service

EXPECTED: dict[tuple[str, str], set[str]] = {
    ("post", "/tokens"): {"201", "400", "401", "403", "409", "413", "415", "422", "429"},
    ("get", "/tokens"): {"200", "401", "403", "422"},
    ("get", "/tokens/{key_id}"): {"200", "401", "404", "422"},
    ("post", "/tokens/{key_id}/rotate"): {"201", "400", "401", "403", "404", "409", "413", "422"},
    ("delete", "/tokens/current"): {"200", "401", "403", "409"},
    ("delete", "/tokens/{key_id}"): {"200", "401", "404", "409", "422"},
    ("post", "/users"): {"201", "400", "401", "403", "409", "413", "415", "422"},
    ("get", "/users"): {"200", "401", "403"},
    ("get", "/users/{user}"): {"200", "401", "403", "404", "422"},
    ("patch", "/users/{user}"): {"200", "400", "401", "403", "404", "413", "415", "422"},
    ("post", "/users/{user}/password"): {"200", "400", "401", "403", "404", "413", "422"},
    ("get", "/audit"): {"200", "401", "403", "422"},
}
BODIES = {
    ("post", "/tokens"): ("TokenCreate", True),
    ("post", "/tokens/{key_id}/rotate"): ("TokenRotate", False),
    ("post", "/users"): ("UserCreate", True),
    ("patch", "/users/{user}"): ("UserUpdate", True),
    ("post", "/users/{user}/password"): ("PasswordReset", True),
}


@pytest.fixture
def document(service: Service) -> dict[str, Any]:
    response = httpx.get(f"{service.base_url}/authgate/openapi.json")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][f"/authgate/v1{path}"][method]
    return operation


def test_security_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"] == {"type": "http", "scheme": "bearer"}
    for method, path in EXPECTED:
        security = _operation(document, method, path)["security"]
        assert {"ApiKey": []} in security and {"Bearer": []} in security
    # Logging in needs no credential: the empty requirement says so.
    assert {} in _operation(document, "post", "/tokens")["security"]


@pytest.mark.parametrize(("method", "path"), list(EXPECTED))
def test_every_status_code_is_documented(document: dict[str, Any], method: str, path: str) -> None:
    responses = _operation(document, method, path)["responses"]
    assert EXPECTED[(method, path)] | {"500", "503"} <= set(responses)
    for status, entry in responses.items():
        assert entry["description"], status
        if status.startswith(("4", "5")):
            schema = entry["content"]["application/json"]["schema"]["$ref"]
            assert schema.rsplit("/", 1)[1] in {"ErrorOut", "ValidationErrorOut"}
    if "429" in responses:
        assert "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize(("method", "path"), list(BODIES))
def test_request_bodies_are_described_and_closed(
    document: dict[str, Any], method: str, path: str
) -> None:
    title, required = BODIES[(method, path)]
    body = _operation(document, method, path)["requestBody"]
    assert body["required"] is required
    schema = body["content"]["application/json"]["schema"]
    assert schema["title"] == title
    assert schema["additionalProperties"] is False


def test_docs_are_served(service: Service) -> None:
    response = httpx.get(f"{service.base_url}/authgate/docs")
    assert response.status_code == 200
    assert "/authgate/openapi.json" in response.text
