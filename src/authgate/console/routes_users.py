"""Users: add, change role, disable or enable, reset a password; their keys and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from authgate.console.pages import ConsoleRoute, redirect, render
from authgate.console.visitors import Post, Seen, runtime_of
from authgate.errors import InvalidRequest

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/console/users")
def users(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    listed = runtime.lifecycle.list_users(found.principal, found.source)
    return render(
        request,
        "users.html",
        visitor=found,
        users=listed,
        roles=runtime.roles.roles,
    )


@router.post("/console/users")
def create_user(request: Request, post: Post) -> Response:
    runtime = runtime_of(request)
    found, form = post.visitor, post.form
    user = runtime.lifecycle.create_user(
        found.principal,
        email=form.text("email"),
        password=form.raw("password") or "",
        role=form.text("role"),
        source=found.source,
    )
    return redirect(request, f"users/{user.id}", done="user-created")


@router.get("/console/users/{user_id}")
def user(request: Request, found: Seen, user_id: str) -> Response:
    runtime = runtime_of(request)
    record = runtime.lifecycle.get_user(found.principal, user_id, found.source)
    tokens, total = runtime.store.page_keys(owner_id=record.id, limit=100)
    return render(
        request,
        "user.html",
        visitor=found,
        user=record,
        tokens=tokens,
        total=total,
        sessions=runtime.sessions.list_for(found.principal, record.id),
        roles=runtime.roles.roles,
    )


@router.post("/console/users/{user_id}/role")
def change_role(request: Request, post: Post, user_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    runtime.lifecycle.update_user(
        found.principal, user_id, role=post.form.text("role"), active=None, source=found.source
    )
    return redirect(request, f"users/{user_id}", done="role-changed")


@router.post("/console/users/{user_id}/active")
def set_active(request: Request, post: Post, user_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    wanted = post.form.get("active")
    if wanted not in {"true", "false"}:
        raise InvalidRequest("active must be true or false.")
    runtime.lifecycle.update_user(
        found.principal, user_id, role=None, active=wanted == "true", source=found.source
    )
    return redirect(request, f"users/{user_id}", done="enabled" if wanted == "true" else "disabled")


@router.post("/console/users/{user_id}/password")
def reset_password(request: Request, post: Post, user_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    runtime.lifecycle.reset_password(
        found.principal, user_id, password=post.form.raw("password") or "", source=found.source
    )
    return redirect(request, f"users/{user_id}", done="password-reset")
