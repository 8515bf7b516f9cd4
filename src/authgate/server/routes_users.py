"""``/users``: create, list, show, change role or disable, reset a password (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from authgate.manage.users import user_dict
from authgate.server.body import body_openapi, json_body
from authgate.server.callers import Caller, ClientAddress
from authgate.server.deps import RuntimeDep
from authgate.server.models import PasswordReset, UserCreate, UserOut, UserUpdate
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["users"])

UserRef = Annotated[
    str, Path(min_length=1, max_length=320, description="The user's id, or their email.")
]
NEEDS = "Needs `users:manage` or the admin role. "


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="Create a user",
    description=NEEDS
    + "The role must be at or below the caller's own, its scopes held by the caller.",
    responses=errors(400, 401, 403, 409, 413, 415, 422),
    openapi_extra=body_openapi(UserCreate),
)
def create_user(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    body: Annotated[UserCreate, json_body(UserCreate)],
) -> dict[str, Any]:
    user = runtime.lifecycle.create_user(
        principal, email=body.email, password=body.password, role=body.role, source=source
    )
    return user_dict(user)


@router.get(
    "/users",
    response_model=list[UserOut],
    summary="List users",
    description=NEEDS,
    responses=errors(401, 403),
)
def list_users(
    runtime: RuntimeDep, principal: Caller, source: ClientAddress
) -> list[dict[str, Any]]:
    return [user_dict(user) for user in runtime.lifecycle.list_users(principal, source)]


@router.get(
    "/users/{user}",
    response_model=UserOut,
    summary="One user",
    description=NEEDS,
    responses=errors(401, 403, 404, 422),
)
def get_user(
    runtime: RuntimeDep, principal: Caller, source: ClientAddress, user: UserRef
) -> dict[str, Any]:
    return user_dict(runtime.lifecycle.get_user(principal, user, source))


@router.patch(
    "/users/{user}",
    response_model=UserOut,
    summary="Change a user's role, or disable (or enable) them",
    description=NEEDS
    + "Only for a user (and a new role) at or below the caller's role. Disabling revokes "
    "every token and access key the user holds, on every instance within a second.",
    responses=errors(400, 401, 403, 404, 413, 415, 422),
    openapi_extra=body_openapi(UserUpdate),
)
def update_user(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    user: UserRef,
    body: Annotated[UserUpdate, json_body(UserUpdate)],
) -> dict[str, Any]:
    updated = runtime.lifecycle.update_user(
        principal, user, role=body.role, active=body.active, source=source
    )
    return user_dict(updated)


@router.post(
    "/users/{user}/password",
    response_model=UserOut,
    summary="Set a new password for a user",
    description=NEEDS,
    responses=errors(400, 401, 403, 404, 413, 415, 422),
    openapi_extra=body_openapi(PasswordReset),
)
def reset_password(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    user: UserRef,
    body: Annotated[PasswordReset, json_body(PasswordReset)],
) -> dict[str, Any]:
    updated = runtime.lifecycle.reset_password(
        principal, user, password=body.password, source=source
    )
    return user_dict(updated)
