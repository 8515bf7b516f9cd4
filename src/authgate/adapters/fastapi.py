"""FastAPI dependencies on top of ``AuthgateMiddleware``.

The middleware authenticates; these read the principal it left in the scope, refuse
with authgate's own 401 / 403 (rendered by the middleware in the JSON error shape), and
declare the ``X-API-Key`` and ``Bearer`` schemes so they show in the OpenAPI document::

    @app.post("/packages", dependencies=[Depends(RequireScopes("packages:write"))])
    async def submit(...): ...

    @app.post("/packages/{name}/approve")
    async def approve(name: str, admin: Annotated[Principal, Depends(require_role("admin"))]):
        ...

Administrators pass every check; a key with the ``*`` scope (static tokens, the local
bypass) has every application scope.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from authgate.adapters.scope import PRINCIPAL_SCOPE_KEY
from authgate.errors import AuthgateError, Forbidden, MissingCredentials
from authgate.principal import Principal

__all__ = [
    "CurrentPrincipal",
    "OptionalPrincipal",
    "RequireScopes",
    "api_key_scheme",
    "bearer_scheme",
    "current_principal",
    "optional_principal",
    "require_role",
]

# Declared for the OpenAPI document; the middleware has already done the checking.
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="Bearer")


def _from_scope(request: Request) -> Principal | None:
    if PRINCIPAL_SCOPE_KEY not in request.scope:
        raise AuthgateError(
            "authgate dependencies need AuthgateMiddleware in front of the app "
            "(app.add_middleware(AuthgateMiddleware, ...))."
        )
    principal = request.scope[PRINCIPAL_SCOPE_KEY]
    return principal if isinstance(principal, Principal) else None


async def optional_principal(request: Request) -> Principal | None:
    """The caller on a public route: a principal when a valid credential came, else None."""
    return _from_scope(request)


async def current_principal(
    request: Request,
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
    _bearer: Annotated[Any, Depends(bearer_scheme)],
) -> Principal:
    principal = _from_scope(request)
    if principal is None:
        raise MissingCredentials()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


class RequireScopes:
    """A dependency that needs every one of ``scopes``; it returns the principal."""

    def __init__(self, *scopes: str) -> None:
        if not scopes:
            raise ValueError("RequireScopes needs at least one scope")
        self.scopes = frozenset(scopes)
        self._message = f"This needs the scope(s): {', '.join(sorted(self.scopes))}."

    def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not principal.has_scopes(self.scopes):
            raise Forbidden(self._message)
        return principal


class _RequireRole:
    def __init__(self, role: str) -> None:
        self.role = role
        self._message = f"This needs the {role} role."

    def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not (principal.is_admin or principal.role == self.role):
            raise Forbidden(self._message)
        return principal


def require_role(role: str) -> _RequireRole:
    """A dependency that needs ``role`` (administrators always pass)."""
    return _RequireRole(role)
