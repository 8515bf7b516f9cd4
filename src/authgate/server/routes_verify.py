"""Forward auth: ``/authgate/v1/verify`` answers nginx ``auth_request``, Traefik
ForwardAuth and Caddy ``forward_auth``.

The proxy asks before it forwards a request: the original method and URI come in
headers (``X-Forwarded-Method`` / ``X-Forwarded-Uri`` from Traefik and Caddy,
``X-Original-Method`` / ``X-Original-URI`` as nginx configurations usually name them),
the credential in the client's own ``X-API-Key`` or ``Authorization`` header, which the
proxy passes along. The answer is 200 with ``X-Authgate-Key-Id``, ``-Key-Name`` and
``-Scopes`` for the proxy to copy upstream (none for an anonymous request to a public
route), else the error the middleware would give: 401 with ``WWW-Authenticate``, 403,
429 or 503, in the JSON shape.

The same rules as the middleware decide (the same ``Gate``), with two differences that
follow from the request coming from a proxy:

- the localhost bypass never applies: the socket peer is the proxy, not the client;
- the original method and URI are required, and when a request carries both spellings
  of either they must agree. A client can send these headers itself, and a proxy
  overwrites only the one it sets; refusing a disagreement means a client-written
  ``X-Forwarded-Uri: /public`` can never stand in for the URI nginx put in
  ``X-Original-URI``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from authgate.adapters.asgi import default_rules
from authgate.adapters.scope import peer_of
from authgate.errors import AuthgateError, InvalidRequest
from authgate.facts import RequestFacts
from authgate.gate import Gate
from authgate.http import json_error
from authgate.policy import canonical_path
from authgate.proxyheaders import identity_headers
from authgate.s3access import forward_auth_refusal

__all__ = ["RULES_STATE_KEY", "router"]

# ``app.state`` attribute holding the rules of the protected app, set by whoever
# composes the server; without it the config file's rules apply, as in the middleware.
RULES_STATE_KEY = "authgate_rules"
_GATE_STATE_KEY = "authgate_verify_gate"

router = APIRouter(tags=["forward auth"])

_METHODS = ("X-Forwarded-Method", "X-Original-Method")
_URIS = ("X-Forwarded-Uri", "X-Original-URI")


def _one_value(request: Request, names: tuple[str, str]) -> str | None:
    values = [value for name in names for value in request.headers.getlist(name)]
    if not values:
        return None
    if any(value != values[0] for value in values[1:]):
        raise InvalidRequest(f"{' and '.join(names)} disagree: refusing to guess.")
    return values[0]


def _gate(request: Request) -> Gate:
    state = request.app.state
    gate: Gate | None = getattr(state, _GATE_STATE_KEY, None)
    if gate is None:
        runtime = state.runtime
        rules = getattr(state, RULES_STATE_KEY, None)
        if rules is None:
            rules = default_rules(runtime.settings)
        gate = Gate(runtime, rules, reserved_prefix=runtime.settings.http_prefix)
        # The peer is the proxy: "local" would describe the proxy, never the client.
        gate.bypass = False
        setattr(state, _GATE_STATE_KEY, gate)
    return gate


def _original(request: Request) -> tuple[str, str, str]:
    method = _one_value(request, _METHODS)
    uri = _one_value(request, _URIS)
    if method is None or uri is None:
        raise InvalidRequest(
            "Forward auth needs the original request: send X-Forwarded-Method and "
            "X-Forwarded-Uri (or X-Original-Method and X-Original-URI)."
        )
    method = method.strip().upper()
    if not method.isalpha() or len(method) > 20:
        raise InvalidRequest("The original method is not an HTTP method.")
    if "://" in uri.split("?", 1)[0]:
        parts = urlsplit(uri)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = uri.partition("?")
    return method, path, query


def _error(error: AuthgateError) -> Response:
    status, headers, body = json_error(error)
    return Response(body, status_code=status, headers=dict(headers))


# Proxies ask with GET; some pass the original method along instead, so every method
# gets the same answer (documented once, under GET).
@router.api_route(
    "/verify",
    methods=["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
@router.get(
    "/verify",
    responses={
        200: {"description": "Allowed; identity in X-Authgate-Key-Id, -Key-Name, -Scopes"},
        400: {"description": "The original URI is not a path authgate accepts"},
        401: {"description": "Missing or invalid credentials"},
        403: {"description": "Authenticated, but a scope or role is missing"},
        422: {"description": "The original method or URI is missing, or its spellings disagree"},
        429: {"description": "Too many failed attempts from this client"},
        503: {"description": "authgate is not ready"},
    },
)
async def verify(request: Request) -> Response:
    """Decide whether the proxy may forward the request it describes."""
    try:
        method, path, query = _original(request)
        canon = canonical_path(path)
    except AuthgateError as exc:
        return _error(exc)
    gate = _gate(request)
    facts = RequestFacts.from_asgi_headers(
        method,
        canon.path,
        request.scope["headers"],
        query_string=query.encode("latin-1", "replace"),
        raw_path=canon.raw_path.encode("latin-1"),
        peer=peer_of(request.scope),
        scheme=request.scope.get("scheme", "http"),
    )
    rule = gate.rule_for(method, canon.match)
    verdict = gate.check(facts, rule, canon.match, allow_io=False)
    if verdict is None:
        verdict = await run_in_threadpool(gate.check, facts, rule, canon.match, allow_io=True)
    assert verdict is not None
    if verdict.error is not None:
        return _error(verdict.error)
    if verdict.s3 is not None:
        refusal = forward_auth_refusal(verdict.s3)
        if refusal is not None:
            return _error(refusal)
    headers = {"cache-control": "no-store"}
    if verdict.principal is not None:
        headers.update(identity_headers(verdict.principal))
    if verdict.rate is not None:
        headers.update(verdict.rate.headers())
    return Response(status_code=200, headers=headers)
