"""What counts as a browser's CORS preflight: exactly what a browser sends, no more."""

from __future__ import annotations

import pytest

from authgate.facts import RequestFacts
from authgate.s3.cors import is_cors_preflight

BROWSER = (("origin", "https://app.example.org"), ("access-control-request-method", "PUT"))


def facts(*headers: tuple[str, str], method: str = "OPTIONS", query: str = "") -> RequestFacts:
    return RequestFacts(method=method, path="/b/k", headers=headers, query_string=query)


def test_a_browsers_preflight() -> None:
    assert is_cors_preflight(facts(*BROWSER))
    assert is_cors_preflight(facts(*BROWSER, ("access-control-request-headers", "content-type")))
    assert is_cors_preflight(facts(*BROWSER, ("content-length", "0")))
    # To a presigned URL: the query is the URL's, and is not checked on a preflight.
    assert is_cors_preflight(facts(*BROWSER, query="X-Amz-Signature=abc&X-Amz-Credential=x"))


@pytest.mark.parametrize(
    "headers",
    [
        BROWSER[:1],  # no Access-Control-Request-Method
        BROWSER[1:],  # no Origin
        (*BROWSER, ("origin", "https://other.example")),
        (*BROWSER, ("access-control-request-method", "GET")),
        (("origin", "https://app.example.org"), ("access-control-request-method", "PUT, GET")),
        (("origin", "https://app.example.org"), ("access-control-request-method", "")),
        (("origin", " "), ("access-control-request-method", "PUT")),
        (*BROWSER, ("authorization", "AWS4-HMAC-SHA256 Credential=AKAG/...")),
        (*BROWSER, ("x-api-key", "ag_x")),
        (*BROWSER, ("cookie", "s=1")),
        (*BROWSER, ("proxy-authorization", "Basic eA==")),
        (*BROWSER, ("content-length", "5")),
        (*BROWSER, ("content-length", "0"), ("content-length", "5")),
        (*BROWSER, ("transfer-encoding", "chunked")),
    ],
)
def test_anything_more_or_less_is_not_one(headers: tuple[tuple[str, str], ...]) -> None:
    assert not is_cors_preflight(facts(*headers))


@pytest.mark.parametrize("method", ["GET", "options", "POST"])
def test_only_options_is_a_preflight(method: str) -> None:
    assert not is_cors_preflight(facts(*BROWSER, method=method))
