"""``/authgate/v1/verify`` in the OpenAPI document.

Forward auth is answered by ``authgate.adapters.forward_auth.ForwardAuth``, a pure ASGI
app in front of the middleware (``authgate.server.compose.build_root_app``): verify is
called for every request a proxy serves, so it skips this app's routing and models.
This route only documents it; a request reaches it only by a spelling of the path other
than the one proxies are configured with (``//``, dot segments), which is refused.
"""

from __future__ import annotations

from fastapi import APIRouter

from authgate.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["forward auth"])


@router.get(
    "/verify",
    responses={
        200: {"description": "Allowed; identity in X-Authgate-Key-Id, -Key-Name, -Scopes"},
        400: {"description": "This request's own Host is repeated or not a host"},
        401: {"description": "Missing or invalid credentials"},
        403: {
            "description": (
                "A scope or role is missing (forbidden); the original request cannot be read "
                "one way (invalid_path, ambiguous_host, ambiguous_original); the proxy sent "
                "no original method or URI (proxy_misconfigured)"
            )
        },
        429: {"description": "Too many failed attempts from this client"},
        503: {"description": "authgate is not ready"},
    },
)
async def verify() -> None:
    """Decide whether the proxy may forward the request it describes: the original method
    and URI in X-Forwarded-Method / X-Forwarded-Uri (or X-Original-Method /
    X-Original-URI), or, for Envoy's ext_authz, the original method with the original path
    appended (``/authgate/v1/verify/<path>``). Every method gets the same answer."""
    raise NotFound("Forward auth answers at exactly /authgate/v1/verify.")
