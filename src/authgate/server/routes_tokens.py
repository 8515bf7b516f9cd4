"""``/tokens``: log in for a token, create service tokens, list, show, rotate, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from authgate.errors import InvalidRequest, MissingCredentials
from authgate.manage.keys import CreatedKey
from authgate.server.body import body_openapi, json_body
from authgate.server.callers import Caller, ClientAddress, OptionalCaller, sends_credentials
from authgate.server.deps import RuntimeDep
from authgate.server.models import TokenCreate, TokenCreated, TokenOut, TokenRotate
from authgate.server.paging import MAX_OFFSET, MAX_PAGE
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["tokens"])

KeyId = Annotated[str, Path(min_length=1, max_length=64, description="The token's id.")]


def _created(created: CreatedKey, runtime: RuntimeDep) -> dict[str, Any]:
    return {"token": created.token, **created.record.metadata(runtime.clock())}


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    summary="Log in for a token, or create a service token",
    description=(
        "Public. With `email` and `password`: a token of the user's own, scoped by their "
        "role (failed logins are limited per account and per client address). Without "
        "them, and with a "
        "credential holding `tokens:manage`: a service token. The token is in the answer "
        "once and never again."
    ),
    responses=errors(400, 401, 403, 409, 413, 415, 422, 429),
    openapi_extra={**body_openapi(TokenCreate), "security": [{}]},
)
def create_token(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: OptionalCaller,
    source: ClientAddress,
    body: Annotated[TokenCreate, json_body(TokenCreate)],
) -> dict[str, Any]:
    lifecycle = runtime.lifecycle
    if body.email is not None or body.password is not None:
        if body.email is None or body.password is None:
            raise InvalidRequest("email and password go together: send both, or neither.")
        if sends_credentials(request):
            raise InvalidRequest("Send either email and password or a credential, not both.")
        created, decision = lifecycle.login(
            email=body.email,
            password=body.password,
            name=body.name,
            scopes=body.scopes,
            expires_in_days=body.expires_in_days,
            source=source,
        )
        response.headers.update(decision.headers())
    else:
        if principal is None:
            raise MissingCredentials(
                "Send email and password for a token of your own, "
                "or a credential holding tokens:manage for a service token."
            )
        created = lifecycle.create_service_token(
            principal,
            name=body.name,
            scopes=body.scopes,
            expires_in_days=body.expires_in_days,
            source=source,
        )
    return _created(created, runtime)


@router.get(
    "/tokens",
    response_model=list[TokenOut],
    summary="List the caller's tokens (all of them with ?all=true)",
    description=(
        "Metadata only, revoked and expired tokens included and flagged. `all=true` needs "
        "`tokens:manage` or the admin role, and lists the tokens the caller may act on: those "
        "of principals whose role and scopes it could grant. Without `limit`, every token, "
        "oldest first. With `limit`, one page, newest first: `X-Total-Count` says how many "
        'match in all and a `Link` header with `rel="next"` gives the next page\'s URL. '
        "`search` (with `limit`) keeps the tokens whose name, id or hint contains it."
    ),
    responses=errors(401, 403, 422),
)
def list_tokens(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    everyone: Annotated[bool, Query(alias="all", description="Every token.")] = False,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Page size; pages newest first.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Tokens to skip.")] = 0,
    search: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Part of a name, id or hint.")
    ] = None,
) -> list[dict[str, Any]]:
    now = runtime.clock()
    if limit is None:
        if offset or search is not None:
            raise InvalidRequest("offset and search page a listing: give limit with them")
        records = runtime.lifecycle.list_tokens(principal, everyone=everyone, source=source)
        return [record.metadata(now) for record in records]
    page, total = runtime.lifecycle.page_tokens(
        principal, everyone=everyone, search=search, limit=limit, offset=offset, source=source
    )
    response.headers["X-Total-Count"] = str(total)
    if offset + len(page) < total:
        # A reference relative to the request (RFC 8288): no Host read back to the client.
        following = request.url.include_query_params(offset=offset + limit)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [record.metadata(now) for record in page]


@router.delete(
    "/tokens/current",
    response_model=TokenOut,
    summary="Revoke the token this request is made with",
    description=(
        "Any valid API key may revoke itself. Static tokens and the admin key cannot "
        "(403): they are removed from the configuration or the data folder."
    ),
    responses=errors(401, 403, 409),
)
def revoke_current(runtime: RuntimeDep, principal: Caller, source: ClientAddress) -> dict[str, Any]:
    record = runtime.lifecycle.revoke_current(principal, source)
    return record.metadata(runtime.clock())


@router.get(
    "/tokens/{key_id}",
    response_model=TokenOut,
    summary="One token's metadata",
    description=(
        "The owner's, or a `tokens:manage` holder's who could grant the token's holder "
        "everything it has; anyone else gets the 404 of a missing id."
    ),
    responses=errors(401, 404, 422),
)
def get_token(
    runtime: RuntimeDep, principal: Caller, source: ClientAddress, key_id: KeyId
) -> dict[str, Any]:
    record = runtime.lifecycle.get_token(principal, key_id, source)
    return record.metadata(runtime.clock())


@router.post(
    "/tokens/{key_id}/rotate",
    status_code=201,
    response_model=TokenCreated,
    summary="Make a successor token; the old one works until the grace period ends",
    description=(
        "Who may see a token may rotate it; the successor never holds scopes the owner's "
        "role or the rotating credential could not grant (403)."
    ),
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=body_openapi(TokenRotate, required=False),
)
def rotate_token(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    key_id: KeyId,
    body: Annotated[TokenRotate, json_body(TokenRotate, optional=True)],
) -> dict[str, Any]:
    created = runtime.lifecycle.rotate_token(
        principal, key_id, grace=timedelta(seconds=body.grace_seconds), source=source
    )
    return _created(created, runtime)


@router.delete(
    "/tokens/{key_id}",
    response_model=TokenOut,
    summary="Revoke a token",
    description=(
        "The owner, or a `tokens:manage` holder who could grant the token's holder everything "
        "it has; anyone else gets the 404 of a missing id."
    ),
    responses=errors(401, 404, 409, 422),
)
def revoke_token(
    runtime: RuntimeDep, principal: Caller, source: ClientAddress, key_id: KeyId
) -> dict[str, Any]:
    record = runtime.lifecycle.revoke_token(principal, key_id, source)
    return record.metadata(runtime.clock())
