"""The API's query and path parameters, read from its OpenAPI document, so that a
parameter added later is attacked by the tests that walk them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.service import Service


def openapi_of(api: Service) -> dict[str, Any]:
    response = httpx.get(f"{api.base_url}/authgate/openapi.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def parameters_of(
    openapi: dict[str, Any], kinds: set[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, parameter) for every query or path parameter whose schema (or, for
    an optional one, an ``anyOf`` option) has one of these JSON types."""
    found = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                types = {schema.get("type")} | {
                    option.get("type") for option in schema.get("anyOf", [])
                }
                if types & kinds and parameter["in"] in ("query", "path"):
                    found.append((method, path, parameter))
    return found
