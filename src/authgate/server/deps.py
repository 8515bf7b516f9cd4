"""FastAPI dependencies of the token service's own routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from authgate.adapters.scope import PRINCIPAL_SCOPE_KEY, facts_from_scope
from authgate.credentials.verifiers import FactsRequest
from authgate.errors import AuthgateError
from authgate.gate import Gate
from authgate.pipeline import run_async
from authgate.policy import Rule
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


# The token service's own routes take a credential everywhere they ask for one.
_CREDENTIAL_REQUIRED = Rule("*", "/**")
_GATE_STATE_KEY = "authgate_service_gate"


def _gate(request: Request, runtime: Runtime) -> Gate:
    state = request.app.state
    gate: Gate | None = getattr(state, _GATE_STATE_KEY, None)
    if gate is None:
        gate = Gate(runtime, [_CREDENTIAL_REQUIRED], reserved_prefix=runtime.settings.http_prefix)
        # The token service never honours the localhost bypass.
        gate.bypass = False
        setattr(state, _GATE_STATE_KEY, gate)
    return gate


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
    gate = _gate(request, runtime)
    # Matched as authgate's own route, whatever path the service is mounted at: its
    # routes take authgate's credentials only.
    match = gate.reserved or "/"
    verdict = await run_async(gate.decide(FactsRequest(facts), _CREDENTIAL_REQUIRED, match))
    if verdict.error is not None:
        raise verdict.error
    principal = verdict.principal
    if principal is None:
        raise AuthgateError()
    request.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    principal.require_admin()
    return principal
