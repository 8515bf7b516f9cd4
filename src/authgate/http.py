"""The one place an ``AuthgateError`` becomes an HTTP JSON answer."""

from __future__ import annotations

import json

from authgate.errors import AuthgateError

__all__ = ["JSON_CONTENT_TYPE", "json_error"]

JSON_CONTENT_TYPE = "application/json"


def json_error(error: AuthgateError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body in the FastAPI shape plus a machine code."""
    body = json.dumps(error.body()).encode()
    headers = [
        ("content-type", JSON_CONTENT_TYPE),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
        *((name.lower(), value) for name, value in error.headers.items()),
    ]
    return error.status, headers, body
