"""WSGI middleware that refuses requests which did not come through authgate.

    from authgate.assertion.wsgi import AssertionMiddleware

    app.wsgi_app = AssertionMiddleware(
        app.wsgi_app,
        jwks_url="https://auth.internal/authgate/.well-known/jwks.json",
        audience="https://app.internal",
    )

The verified ``Assertion`` is in ``environ["authgate.assertion"]``. A WSGI server joins
repeated headers with commas (which no JWT holds), so a second copy fails to verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from authgate.assertion.verification import AssertionVerifier
from authgate.errors import AuthgateError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ENVIRON_KEY", "AssertionMiddleware"]

ENVIRON_KEY = "authgate.assertion"


class AssertionMiddleware:
    def __init__(
        self, app: WSGIApplication, *, jwks_url: str, audience: str, issuer: str = "authgate"
    ) -> None:
        self.app = app
        self.verifier = AssertionVerifier(jwks_url=jwks_url, audience=audience, issuer=issuer)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ[ENVIRON_KEY] = self.verifier.verify(
                environ.get("HTTP_X_AUTHGATE_ASSERTION", "")
            )
        except AuthgateError as exc:  # InvalidAssertion, or KeysUnavailable (503)
            return _refuse(exc, start_response)
        return self.app(environ, start_response)


def _refuse(error: AuthgateError, start_response: Any) -> list[bytes]:
    body = json.dumps(error.body()).encode()
    start_response(
        f"{error.status} {HTTPStatus(error.status).phrase}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
