"""``GET <prefix>/.well-known/jwks.json``: the public keys assertions are signed with.

Public and cacheable: upstreams fetch it to verify ``X-Authgate-Assertion``. A cache
may keep it for five minutes; an upstream that meets a new ``kid`` fetches again, and a
rotated-out key stays listed for the overlap, so neither way is an assertion refused.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authgate.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["assertions"])

CACHE_CONTROL = "public, max-age=300"


@router.get("/.well-known/jwks.json", summary="Keys that sign X-Authgate-Assertion")
def jwks(request: Request) -> JSONResponse:
    assertions = request.app.state.runtime.assertions
    if assertions is None:
        raise NotFound("Assertions are off (assertion = false): there is no key set.")
    return JSONResponse(
        assertions.keys.jwks(),
        headers={"cache-control": CACHE_CONTROL},
        media_type="application/jwk-set+json",
    )
