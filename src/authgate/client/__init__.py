"""A Python client for authgate's token service (``/authgate/v1``), sync and async, on httpx.

    from authgate.client import AuthgateClient

    with AuthgateClient("https://gate.example.internal:8080", verify="ca.pem") as client:
        client.login("alice@example.com", password, name="laptop")
        print(client.whoami())

Errors are the ``authgate.errors`` hierarchy (see ``authgate.client._errors``):

    AuthgateError
    ├── MissingCredentials, InvalidCredentials, Forbidden, NotFound, Conflict,
    │   InvalidRequest, RateLimited, UpstreamError, NotReady, UpstreamTimeout
    │   └── Unreachable (a NotReady)   no answer: refused, timed out, TLS not trusted
    └── ClientError                    any other error answer (status, code, detail)
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401
except ModuleNotFoundError as exc:  # the middleware runs without httpx; the client cannot
    raise ModuleNotFoundError(
        "authgate.client needs httpx, which is not installed: "
        "pip install 'authgate[cli]' (or pip install httpx)",
        name="httpx",
    ) from exc

from authgate.client._calls import api_base
from authgate.client._client import AsyncAuthgateClient, AuthgateClient, Verify
from authgate.client._errors import ClientError, Unreachable, error_for
from authgate.client._models import (
    AccessKey,
    AuditEvent,
    AuditPage,
    CreatedAccessKey,
    CreatedToken,
    LeakLabel,
    Session,
    Token,
    User,
)

__all__ = [
    "AccessKey",
    "AsyncAuthgateClient",
    "AuditEvent",
    "AuditPage",
    "AuthgateClient",
    "ClientError",
    "CreatedAccessKey",
    "CreatedToken",
    "LeakLabel",
    "Session",
    "Token",
    "Unreachable",
    "User",
    "Verify",
    "api_base",
    "error_for",
]
