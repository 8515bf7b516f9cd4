"""The one place an ``AuthgateError`` becomes an HTTP answer: JSON here, S3's XML for an
``S3Error`` (``authgate.s3.access.render_s3``), chosen in ``render_error``."""

from __future__ import annotations

import json
from collections.abc import Callable

from authgate.errors import AuthgateError
from authgate.s3.access import render_s3
from authgate.sigv4 import S3Error

__all__ = ["JSON_CONTENT_TYPE", "Rendered", "json_error", "render_error"]

# Status, headers, body.
Rendered = tuple[int, list[tuple[str, str]], bytes]

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


def render_error(
    error: AuthgateError,
    method: str = "GET",
    render: Callable[[AuthgateError], Rendered] = json_error,
) -> Rendered:
    """Every refusal of a SigV4 request is an ``S3Error`` (the gate makes it so): S3's XML,
    which S3 clients read (HEAD: no body). Any other error: ``render``'s JSON."""
    if isinstance(error, S3Error):
        return render_s3(error, method)
    return render(error)
