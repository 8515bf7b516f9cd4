"""Who is calling the token service's own routes, and from where.

``caller`` is ``deps.current_principal`` plus one thing: a disabled user's old token being
tried is audited (a refused escalation), as ``authgate.gate`` does for everything else.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from authgate.adapters.scope import facts_from_scope, peer_of
from authgate.errors import OwnerDisabled
from authgate.principal import Principal
from authgate.proxies import TrustedProxies, normalise_address
from authgate.server.deps import RuntimeDep, api_key_scheme, bearer_scheme, current_principal

__all__ = ["Caller", "ClientAddress", "OptionalCaller", "sends_credentials"]

# Where a middleware in front leaves the principal it authenticated (as deps.py reads it);
# None there means "anonymous on a public route".
PRINCIPAL_SCOPE_KEY = "authgate.principal"


@functools.lru_cache(maxsize=8)
def _proxies(cidrs: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(cidrs)


def client_address(request: Request) -> str | None:
    """The client's address, for login limits and the audit log: the socket's peer, or,
    when that peer is a trusted proxy, the address it forwarded (``authgate.proxies``)."""
    runtime = request.app.state.runtime
    proxies = _proxies(tuple(runtime.settings.trusted_proxies))
    if not proxies:
        return normalise_address(peer_of(request.scope))
    return proxies.client_address(facts_from_scope(request.scope))


ClientAddress = Annotated[str | None, Depends(client_address)]


def sends_credentials(request: Request) -> bool:
    headers = request.headers
    return "x-api-key" in headers or "authorization" in headers


async def caller(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    bearer: Annotated[object, Depends(bearer_scheme)],
) -> Principal:
    try:
        return await current_principal(request, runtime, api_key, bearer)
    except OwnerDisabled as refused:
        await run_in_threadpool(
            runtime.lifecycle.audit_disabled_owner, refused, client_address(request)
        )
        raise


async def optional_caller(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    bearer: Annotated[object, Depends(bearer_scheme)],
) -> Principal | None:
    """The caller if the request carries a credential (or a middleware vouched for it)."""
    vouched = isinstance(request.scope.get(PRINCIPAL_SCOPE_KEY), Principal)
    if not vouched and not sends_credentials(request):
        return None
    return await caller(request, runtime, api_key, bearer)


Caller = Annotated[Principal, Depends(caller)]
OptionalCaller = Annotated[Principal | None, Depends(optional_caller)]
