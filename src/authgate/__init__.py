"""authgate: one authentication layer for HTTP APIs.

The public API, re-exported here (``tests/test_exported_members.py`` guards it):
middleware for ASGI and WSGI apps, FastAPI dependencies, rules, the principal a request
was authenticated as, settings, the runtime and the error hierarchy.
"""

from __future__ import annotations

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
    InvalidCredentials,
    InvalidRequest,
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

__all__ = [
    "AuthgateError",
    "AuthgateMiddleware",
    "AuthgateWSGIMiddleware",
    "ConfigurationError",
    "Conflict",
    "CurrentPrincipal",
    "Forbidden",
    "InvalidCredentials",
    "InvalidRequest",
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
