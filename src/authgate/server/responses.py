"""The error answers each route documents in the OpenAPI document, in one table."""

from __future__ import annotations

from typing import Any

from authgate.server.models import ErrorOut, ValidationErrorOut

__all__ = ["errors"]

_DESCRIPTIONS = {
    400: "The body is not readable JSON (syntax, encoding or a repeated key)",
    401: (
        "No credentials, or unknown, malformed, expired or revoked ones; at login "
        "(code invalid_login), an email and password that do not match"
    ),
    403: "Authenticated, but a scope or role is missing",
    404: "No such item, or one the caller may not see",
    409: "Conflicts with the current state (duplicate name, already revoked)",
    413: "The body is larger than max_body_bytes",
    415: "The body is not sent as application/json",
    422: "The request is invalid; the detail names the fields",
    429: "Too many login attempts from this address",
    500: "Unexpected error (no traceback is ever sent)",
    503: "The store is unreachable or not initialised",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": (
                'Bearer realm="authgate", with error="invalid_token" for bad tokens '
                "(not for a failed login, which sent none)"
            ),
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until a try is allowed",
            "schema": {"type": "integer"},
        },
        "RateLimit-Limit": {"schema": {"type": "integer"}},
        "RateLimit-Remaining": {"schema": {"type": "integer"}},
        "RateLimit-Reset": {"schema": {"type": "integer"}},
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given statuses plus 500 and 503, which any can meet."""
    answer: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500, 503}):
        entry: dict[str, Any] = {
            "model": ValidationErrorOut if status == 422 else ErrorOut,
            "description": _DESCRIPTIONS[status],
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        answer[status] = entry
    return answer
