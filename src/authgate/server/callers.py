"""Who is calling the token service's own routes, and from where.

``caller`` is ``deps.current_principal``, which asks the gate (so a disabled user's old
token being tried is audited there, a refused escalation, as everywhere else).
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Request

from authgate.adapters.scope import PRINCIPAL_SCOPE_KEY, facts_from_scope, peer_of
from authgate.principal import Principal
from authgate.server.deps import RuntimeDep, api_key_scheme, bearer_scheme, current_principal
from authgate.trusted_proxies import TrustedProxies, normalise_address

__all__ = ["Caller", "ClientAddress", "OptionalCaller", "sends_credentials"]


@functools.lru_cache(maxsize=8)
def _proxies(cidrs: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(cidrs)


def client_address(request: Request) -> str | None:
    """The client's address, for login limits and the audit log: the socket's peer, or,
    when that peer is a trusted proxy, the address it forwarded (``authgate.trusted_proxies``)."""
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
    # The gate audits a disabled user's old token being tried, as everywhere else.
    return await current_principal(request, runtime, api_key, bearer)


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
