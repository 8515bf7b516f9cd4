"""A served test issuer and runtimes configured to trust it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from authgate.runtime import Runtime
from tests.jwt.issuer import AUDIENCE, ISSUER, TestIssuer
from tests.middleware.conftest import runtime_for, settings_for

__all__ = ["runtime_for", "settings_for"]  # the middleware tests' runtimes, shared


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer().serving() as running:
        yield running


def issuer_table(issuer: TestIssuer, **overrides: Any) -> dict[str, Any]:
    """One ``[[jwt_issuers]]`` table for the test issuer: scopes from ``scope``, a role
    from ``groups``."""
    table: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks_url": issuer.url,
        "audiences": [AUDIENCE],
        "algorithms": ["RS256", "ES256"],
        "leeway": 30,
        "scope_map": {"api.write": ["items:write", "read"]},
        "role_claim": "groups",
        "role_map": {"platform-admins": "admin"},
    }
    table.update(overrides)
    return table


@pytest.fixture
def jwt_runtime(runtime_for: Callable[..., Runtime], issuer: TestIssuer) -> Callable[..., Runtime]:
    def make(**overrides: Any) -> Runtime:
        table = issuer_table(issuer, **overrides.pop("issuer_table", {}))
        values: dict[str, Any] = {
            "jwt_issuers": [table],
            "scopes": ["items:write", "chat"],
            "failure_rate_limit": "off",
        }
        values.update(overrides)
        return runtime_for(**values)

    return make
