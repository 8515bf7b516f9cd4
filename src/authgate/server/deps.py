"""FastAPI dependencies of the token service's own routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from authgate.adapters.asgi import PRINCIPAL_SCOPE_KEY
from authgate.adapters.scope import facts_from_scope
from authgate.errors import AuthgateError, Forbidden
from authgate.principal import Principal
from authgate.runtime import Runtime

__all__ = ["CurrentPrincipal", "RuntimeDep", "require_admin"]

# Declared only so the OpenAPI document shows both schemes; the check itself is ours.
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="Bearer")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_principal(
    request: Request,
    runtime: RuntimeDep,
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
    _bearer: Annotated[object, Depends(bearer_scheme)],
) -> Principal:
    already = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(already, Principal):
        return already
    facts = facts_from_scope(request.scope)
    authenticator = runtime.authenticator
    decision = authenticator.authenticate(facts, allow_io=False)
    if decision is None:
        decision = await run_in_threadpool(authenticator.authenticate, facts)
    if isinstance(decision, AuthgateError) or decision is None:
        raise decision or AuthgateError()
    request.scope[PRINCIPAL_SCOPE_KEY] = decision
    return decision


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This needs the admin role.")
    return principal
