"""A FastAPI dependency that refuses requests which did not come through authgate.

    from authgate.assertion.fastapi import AssertionRequired

    through_authgate = AssertionRequired(
        jwks_url="https://auth.internal/authgate/.well-known/jwks.json",
        audience="https://app.internal",
    )

    @app.get("/orders")
    def orders(caller: Assertion = Depends(through_authgate)) -> ...

A missing, repeated, forged, expired or other-audience assertion is a 401 in authgate's
JSON error shape (``code: invalid_assertion``).
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from authgate.assertion.verification import Assertion, AssertionVerifier
from authgate.errors import AuthgateError, InvalidAssertion
from authgate.proxy.header_rules import ASSERTION_HEADER

__all__ = ["AssertionRequired"]


class AssertionRequired:
    def __init__(self, *, jwks_url: str, audience: str, issuer: str = "authgate") -> None:
        self.verifier = AssertionVerifier(jwks_url=jwks_url, audience=audience, issuer=issuer)

    # A plain def: FastAPI runs it in its thread pool, where a JWKS fetch may block.
    def __call__(self, request: Request) -> Assertion:
        values = request.headers.getlist(ASSERTION_HEADER)
        try:
            if len(values) != 1:
                raise InvalidAssertion()
            return self.verifier.verify(values[0])
        except AuthgateError as exc:  # InvalidAssertion, or KeysUnavailable (503)
            raise HTTPException(exc.status, detail=exc.body()) from None
