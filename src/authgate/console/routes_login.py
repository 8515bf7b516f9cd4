"""Signing in and out, and the sessions a visitor may see and end."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from authgate.console.forms import Form, read_form
from authgate.console.pages import (
    ConsoleRoute,
    console_path,
    error_headers,
    redirect,
    redirect_to,
    render,
)
from authgate.console.visitors import (
    Post,
    Seen,
    Visitor,
    browser_binding,
    check_form_token,
    check_same_origin,
    clear_session_cookie,
    optional_visitor,
    runtime_of,
    set_session_cookie,
)
from authgate.errors import AuthgateError, InvalidLogin
from authgate.manage.sessions import csrf_token
from authgate.server.callers import client_address

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(request: Request, wanted: str | None) -> str:
    """Where to go after login: a console page, never another site (``//evil``) nor a
    path that climbs out of the console (browsers resolve ``..`` and ``%2e%2e`` alike)."""
    home = console_path(request, "keys")
    if not wanted or not wanted.startswith(console_path(request)) or "//" in wanted:
        return home
    if any(ord(char) < 0x21 for char in unquote(wanted)):
        return home
    # The path as the browser resolves it: split off the query before decoding, or an
    # encoded '?' would hide the segments after it.
    path = unquote(wanted.split("?", 1)[0])
    if "\\" in path or "//" in path or {".", ".."} & set(path.split("/")):
        return home
    return wanted


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, identity: str = ""
) -> Response:
    return render(
        request,
        "login.html",
        visitor=None,
        status=status,
        csrf=csrf_token(browser_binding(request)),
        next=_safe_next(request, request.query_params.get("next")),
        error=error,
        identity=identity,
    )


@router.get("/console")
@router.get("/console/")
def home(request: Request) -> Response:
    return redirect(request, "keys")


@router.get("/console/login")
def login_page(
    request: Request, found: Annotated[Visitor | None, Depends(optional_visitor)]
) -> Response:
    if found is not None and not found.local:
        return redirect(request, "keys")
    return _login_page(request)


@router.post("/console/login")
def login(
    request: Request,
    form: Annotated[Form, Depends(read_form)],
    found: Annotated[Visitor | None, Depends(optional_visitor)],
) -> Response:
    check_same_origin(request)
    check_form_token(browser_binding(request), form.raw("csrf"))
    runtime = runtime_of(request)
    identity = form.get("identity") or ""
    password = form.raw("password") or ""
    source = client_address(request)
    agent = request.headers.get("user-agent")
    try:
        if not identity or not password:
            raise InvalidLogin("Enter your email (or the operator account) and password.")
        if "@" in identity:
            user, _ = runtime.lifecycle.authenticate(
                email=identity, password=password, source=source
            )
            started = runtime.sessions.start(user=user, source=source, user_agent=agent)
        else:
            operator = runtime.operator_login(identity, password, source)
            started = runtime.sessions.start(operator=operator, source=source, user_agent=agent)
    except AuthgateError as error:
        response = _login_page(request, status=error.status, error=error.detail, identity=identity)
        response.headers.update(error_headers(error))
        return response
    if found is not None and found.session is not None:
        # A new id at every login: the session this browser had before ends here.
        runtime.sessions.end(found.actor, found.session.id, reason="replaced")
    response = redirect_to(request, _safe_next(request, form.get("next")))
    set_session_cookie(request, response, started.token)
    return response


@router.post("/console/logout")
def logout(request: Request, post: Post) -> Response:
    found = post.visitor
    if found.session is not None:
        runtime_of(request).sessions.end(found.actor, found.session.id)
    response = redirect(request, "login")
    clear_session_cookie(request, response)
    return response


@router.get("/console/sessions")
def sessions(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    return render(
        request,
        "sessions.html",
        visitor=found,
        sessions=runtime.sessions.list_for(found.principal),
        everyone=runtime.sessions.sees_others(found.principal),
    )


@router.post("/console/sessions/{session_id}/revoke")
def revoke_session(request: Request, post: Post, session_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    record = runtime.sessions.end_for(found.principal, found.actor, session_id)
    if found.session is not None and found.session.id == session_id:
        response = redirect(request, "login")
        clear_session_cookie(request, response)
        return response
    back = post.form.get("back")
    return redirect(
        request,
        back if back in {"sessions", f"users/{record.user_id}"} else "sessions",
        done="session-revoked",
    )
