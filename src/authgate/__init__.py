"""authgate: one authentication layer for HTTP APIs.

The public API, re-exported here (``tests/test_exported_members.py`` guards it):
middleware for ASGI and WSGI apps, FastAPI dependencies, rules, the principal a request
was authenticated as, settings, the runtime and the error hierarchy; and the API's client
(``AuthgateClient``, ``AsyncAuthgateClient``, ``ClientError`` from ``authgate.client``),
imported on first use, so that an app protected by authgate never loads httpx; and
``JwksSource`` (``authgate.jwks``, the ``jwt`` extra), imported on first use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Imported after __version__: the server modules read it.
from authgate.adapters.asgi import AuthgateMiddleware
from authgate.adapters.fastapi import (
    CurrentPrincipal,
    OptionalPrincipal,
    RequireScopes,
    require_role,
)
from authgate.adapters.wsgi import AuthgateWSGIMiddleware
from authgate.errors import (
    AuthgateError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidAssertion,
    InvalidCredentials,
    InvalidLogin,
    InvalidRequest,
    KeysUnavailable,
    MissingCredentials,
    NotFound,
    NotReady,
    RateLimited,
)
from authgate.facts import RequestFacts
from authgate.policy import Rule
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import Settings, load_settings

if TYPE_CHECKING:
    from authgate.client import AsyncAuthgateClient, AuthgateClient, ClientError
    from authgate.jwks import JwksSource

_CLIENT_NAMES = ("AsyncAuthgateClient", "AuthgateClient", "ClientError")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        import authgate.client

        return getattr(authgate.client, name)
    if name == "JwksSource":
        import authgate.jwks

        return authgate.jwks.JwksSource
    raise AttributeError(f"module 'authgate' has no attribute {name!r}")


__all__ = [
    "AsyncAuthgateClient",
    "AuthgateClient",
    "AuthgateError",
    "AuthgateMiddleware",
    "AuthgateWSGIMiddleware",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "CurrentPrincipal",
    "Forbidden",
    "InvalidAssertion",
    "InvalidCredentials",
    "InvalidLogin",
    "InvalidRequest",
    "JwksSource",
    "KeysUnavailable",
    "MissingCredentials",
    "NotFound",
    "NotReady",
    "OptionalPrincipal",
    "Principal",
    "RateLimited",
    "RequestFacts",
    "RequireScopes",
    "Rule",
    "Runtime",
    "Settings",
    "__version__",
    "load_settings",
    "require_role",
]
