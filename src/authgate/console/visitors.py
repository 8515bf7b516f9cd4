"""Who is at the console: a signed-in user, the operator account, or a local peer the
bypass admits; and the checks every state-changing request passes.

A browser is bound to the console by one secret it cannot leak to other sites: the
session cookie after a login, or, for a local peer admitted without one, a random
``local`` cookie. The form token of every page is derived from that secret
(``authgate.manage.sessions.csrf_token``), so a page of another origin can neither read
nor forge it; the cookies are ``SameSite=Strict`` besides, and a request that says it
comes from another site (``Origin``, ``Sec-Fetch-Site``) is refused before any of that.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from authgate.adapters.scope import facts_from_scope
from authgate.console.forms import Form, read_form
from authgate.errors import AuthgateError, Forbidden
from authgate.localhost import LOCAL_PRINCIPAL, bypass_enabled, is_local_request
from authgate.manage.keys import Actor
from authgate.manage.lifecycle import Lifecycle
from authgate.manage.sessions import csrf_token, same_csrf_token
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.server.callers import client_address
from authgate.store.records import SessionRecord, UserRecord

__all__ = [
    "LoginRequired",
    "Post",
    "Posted",
    "Seen",
    "Visitor",
    "check_same_origin",
    "clear_session_cookie",
    "optional_visitor",
    "session_cookie_name",
    "set_session_cookie",
    "visitor",
]

# A random value per browser: the binding of pages served before any session (the login
# form, a local peer's pages).
BROWSER_COOKIE = "authgate_console_browser"
SESSION_COOKIE = "authgate_session"
# Under TLS the cookie is Secure and host-only with Path=/: the __Host- prefix makes the
# browser refuse it otherwise, so no subdomain or plain-HTTP page can plant or read one.
TLS_SESSION_COOKIE = "__Host-authgate_session"


class LoginRequired(AuthgateError):
    status = 401
    code = "login_required"
    default_detail = "Sign in to use the console."


@dataclass(frozen=True, slots=True)
class Visitor:
    principal: Principal
    binding: str  # the cookie secret the form token is derived from
    source: str | None
    session: SessionRecord | None = None  # None: a local peer, no login
    user: UserRecord | None = None  # the signed-in user, if a user (not the operator)

    @property
    def local(self) -> bool:
        return self.session is None

    @property
    def csrf(self) -> str:
        return csrf_token(self.binding)

    @property
    def actor(self) -> Actor:
        return Lifecycle.actor(self.principal, self.source)

    @property
    def label(self) -> str:
        if self.session is None:
            return "this machine (no login needed)"
        return self.principal.owner_email or self.principal.name


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def uses_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def session_cookie_name(request: Request) -> str:
    return TLS_SESSION_COOKIE if uses_tls(request) else SESSION_COOKIE


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    runtime = runtime_of(request)
    response.set_cookie(
        session_cookie_name(request),
        token,
        max_age=runtime.settings.console_session_seconds,
        path="/",
        secure=uses_tls(request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        session_cookie_name(request),
        path="/",
        secure=uses_tls(request),
        httponly=True,
        samesite="strict",
    )


def browser_binding(request: Request) -> str:
    """This browser's random value, made (and set on the answer) if it has none."""
    made: str | None = getattr(request.state, "browser_cookie", None)
    if made is not None:
        return made
    sent = request.cookies.get(BROWSER_COOKIE)
    if sent is not None and len(sent) >= 32:
        return sent
    request.state.browser_cookie = secrets.token_urlsafe(32)
    return str(request.state.browser_cookie)


def set_browser_cookie(request: Request, response: Response) -> None:
    made: str | None = getattr(request.state, "browser_cookie", None)
    if made is not None:
        response.set_cookie(
            BROWSER_COOKIE,
            made,
            path="/",
            secure=uses_tls(request),
            httponly=True,
            samesite="strict",
        )


def _principal_for(runtime: Runtime, record: SessionRecord) -> tuple[Principal, UserRecord | None]:
    if record.user_id is None:
        name = record.operator or "operator"
        principal = Principal(
            id=f"operator:{name}",
            name=name,
            kind="operator",
            scopes=frozenset({"*"}),
            role="admin",
        )
        return principal, None
    user = runtime.store.get_user(record.user_id)
    if user is None or not user.active:
        raise LoginRequired()
    principal = Principal(
        id=user.id,
        name=user.email,
        kind="session",
        scopes=runtime.roles.grantable(user.role),
        role=user.role,
        owner_id=user.id,
        owner_email=user.email,
    )
    return principal, user


def _loopback_host(request: Request) -> bool:
    """Whether the page was asked for by a loopback name: a DNS name of another site
    that resolves to 127.0.0.1 (DNS rebinding) must not ride on the bypass."""
    host = (request.url.hostname or "").lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _local_visitor(request: Request, runtime: Runtime, source: str | None) -> Visitor | None:
    listen_host: str | None = getattr(request.app.state, "listen_host", None)
    if not bypass_enabled(runtime.settings, listen_host) or not _loopback_host(request):
        return None
    if not is_local_request(facts_from_scope(request.scope)):
        return None
    return Visitor(LOCAL_PRINCIPAL, browser_binding(request), source)


def optional_visitor(request: Request) -> Visitor | None:
    """The visitor, or None for nobody signed in (and not admitted as local)."""
    runtime = runtime_of(request)
    source = client_address(request)
    token = request.cookies.get(session_cookie_name(request))
    if token:
        record = runtime.sessions.resolve(token)
        if record is not None:
            principal, user = _principal_for(runtime, record)
            return Visitor(principal, token, source, session=record, user=user)
    return _local_visitor(request, runtime, source)


def visitor(found: Annotated[Visitor | None, Depends(optional_visitor)]) -> Visitor:
    if found is None:
        raise LoginRequired()
    return found


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request another site's page could have sent."""
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        raise Forbidden("This request came from another site; the console refuses it.")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("This request came from another origin; the console refuses it.")


def check_form_token(binding: str, sent: str | None) -> None:
    if not sent or not same_csrf_token(binding, sent):
        raise Forbidden(
            "The form's security token is missing or out of date: reload the page and "
            "submit it again."
        )


@dataclass(frozen=True, slots=True)
class Posted:
    """A state-changing request that passed the origin and form-token checks."""

    visitor: Visitor
    form: Form


async def posted(
    request: Request,
    found: Annotated[Visitor, Depends(visitor)],
    form: Annotated[Form, Depends(read_form)],
) -> Posted:
    check_same_origin(request)
    check_form_token(found.binding, form.raw("csrf"))
    return Posted(found, form)


Seen = Annotated[Visitor, Depends(visitor)]
Post = Annotated[Posted, Depends(posted)]
