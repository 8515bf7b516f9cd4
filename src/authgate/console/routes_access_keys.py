"""Access keys (SigV4 and SigV2) and their bucket grants: admins only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from authgate.console.pages import ConsoleRoute, redirect, render
from authgate.console.visitors import Post, Seen, Visitor, runtime_of
from authgate.manage.access_keys import parse_grant

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _admin(found: Visitor) -> Visitor:
    found.principal.require_admin("Managing access keys")
    return found


@router.get("/console/access-keys")
def access_keys(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    _admin(found)
    return render(
        request,
        "access_keys.html",
        visitor=found,
        access_keys=runtime.access_keys.list(),
    )


@router.post("/console/access-keys")
def create_access_key(request: Request, post: Post) -> Response:
    runtime = runtime_of(request)
    found = _admin(post.visitor)
    lines = (post.form.get("grants") or "").split()
    grants = [parse_grant(line) for line in lines]
    created = runtime.access_keys.create(found.actor, name=post.form.text("name"), grants=grants)
    return render(request, "access_key_created.html", visitor=found, created=created)


@router.get("/console/access-keys/{ident}")
def access_key(request: Request, found: Seen, ident: str) -> Response:
    runtime = runtime_of(request)
    _admin(found)
    return render(
        request,
        "access_key.html",
        visitor=found,
        key=runtime.access_keys.get(ident),
    )


@router.post("/console/access-keys/{ident}/grants")
def set_grant(request: Request, post: Post, ident: str) -> Response:
    runtime = runtime_of(request)
    found = _admin(post.visitor)
    record = runtime.access_keys.grant(
        found.actor, ident, post.form.text("bucket"), post.form.text("permission")
    )
    return redirect(request, f"access-keys/{record.id}", done="grant-set")


@router.post("/console/access-keys/{ident}/grants/remove")
def remove_grant(request: Request, post: Post, ident: str) -> Response:
    runtime = runtime_of(request)
    found = _admin(post.visitor)
    record = runtime.access_keys.revoke_grant(found.actor, ident, post.form.text("bucket"))
    return redirect(request, f"access-keys/{record.id}", done="grant-removed")


@router.post("/console/access-keys/{ident}/revoke")
def revoke_access_key(request: Request, post: Post, ident: str) -> Response:
    runtime = runtime_of(request)
    found = _admin(post.visitor)
    record = runtime.access_keys.revoke(found.actor, ident)
    return redirect(request, f"access-keys/{record.id}", done="revoked")
