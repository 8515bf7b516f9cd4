"""``/access-keys``: SigV4 access keys and their bucket grants, for admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from authgate.adapters.scope import peer_of
from authgate.manage.access_keys import access_key_dict
from authgate.manage.keys import NAME_RE, Actor
from authgate.principal import Principal
from authgate.s3.grants import Permission
from authgate.server.deps import RuntimeDep, require_admin
from authgate.server.responses import errors

__all__ = [
    "AccessKeyCreate",
    "AccessKeyCreated",
    "AccessKeyOut",
    "GrantSet",
    "router",
]

router = APIRouter(prefix="/access-keys", tags=["access keys"])

Admin = Annotated[Principal, Depends(require_admin)]
Ident = Annotated[
    str,
    Path(min_length=1, max_length=64, description="The access key id (AKAG…) or internal id."),
]
Bucket = Annotated[
    str,
    Path(
        min_length=1, max_length=255, description="An S3 bucket name, or a pattern (backup-*, *)."
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AccessKeyCreate(_Strict):
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=f"^{NAME_RE.pattern}$",
        description="1-64 letters, digits, '-', '_' or '.'.",
    )
    grants: dict[str, Permission] = Field(
        default_factory=dict,
        max_length=1000,
        description="Bucket name or pattern (backup-*, *) → read, write or admin.",
    )


class GrantSet(_Strict):
    permission: Permission = Field(description="read, write (⊇ read) or admin (⊇ write).")


class AccessKeyOut(BaseModel):
    """An access key's metadata: never its secret."""

    id: str = Field(description="The internal id (ak_…), as the audit log names it.")
    access_key_id: str
    name: str
    owner_id: str | None
    created_by: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    grants: dict[str, str]
    revoked: bool
    active: bool


class AccessKeyCreated(AccessKeyOut):
    secret_access_key: str = Field(description="The secret: shown this once, never again.")


def _actor(principal: Principal, request: Request) -> Actor:
    return Actor(principal.id, source=peer_of(request.scope))


@router.post(
    "",
    status_code=201,
    response_model=AccessKeyCreated,
    summary="Create an access key; its secret is in the answer once",
    responses=errors(401, 403, 422),
)
def create_access_key(
    request: Request, runtime: RuntimeDep, principal: Admin, body: AccessKeyCreate
) -> dict[str, Any]:
    created = runtime.access_keys.create(
        _actor(principal, request), name=body.name, grants=body.grants
    )
    return created.as_dict()


@router.get(
    "",
    response_model=list[AccessKeyOut],
    summary="List every access key (metadata and grants, never a secret)",
    responses=errors(401, 403),
)
def list_access_keys(runtime: RuntimeDep, principal: Admin) -> list[dict[str, Any]]:
    return [access_key_dict(record) for record in runtime.access_keys.list()]


@router.get(
    "/{ident}",
    response_model=AccessKeyOut,
    summary="One access key",
    responses=errors(401, 403, 404, 422),
)
def get_access_key(runtime: RuntimeDep, principal: Admin, ident: Ident) -> dict[str, Any]:
    return access_key_dict(runtime.access_keys.get(ident))


@router.delete(
    "/{ident}",
    response_model=AccessKeyOut,
    summary="Revoke an access key (every instance refuses it within a second)",
    responses=errors(401, 403, 404, 409, 422),
)
def revoke_access_key(
    request: Request, runtime: RuntimeDep, principal: Admin, ident: Ident
) -> dict[str, Any]:
    record = runtime.access_keys.revoke(_actor(principal, request), ident)
    return access_key_dict(record)


@router.put(
    "/{ident}/grants/{bucket}",
    response_model=AccessKeyOut,
    summary="Grant a bucket, or change the permission on it",
    responses=errors(401, 403, 404, 409, 422),
)
def set_grant(
    request: Request,
    runtime: RuntimeDep,
    principal: Admin,
    ident: Ident,
    bucket: Bucket,
    body: GrantSet,
) -> dict[str, Any]:
    record = runtime.access_keys.grant(_actor(principal, request), ident, bucket, body.permission)
    return access_key_dict(record)


@router.delete(
    "/{ident}/grants/{bucket}",
    response_model=AccessKeyOut,
    summary="Take back a bucket grant",
    responses=errors(401, 403, 404, 422),
)
def delete_grant(
    request: Request, runtime: RuntimeDep, principal: Admin, ident: Ident, bucket: Bucket
) -> dict[str, Any]:
    record = runtime.access_keys.revoke_grant(_actor(principal, request), ident, bucket)
    return access_key_dict(record)
