"""Each API call as data: method, path, query and body. The sync and the async client send
the same ``Call``; neither builds a request of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

__all__ = ["Call", "api_base"]


def api_base(url: str) -> str:
    """``http://host:8080`` → ``http://host:8080/authgate/v1``; a URL already ending in
    ``/v1`` (a server with another reserved prefix) is used as it is."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        return base
    return base + ("/v1" if base.endswith("/authgate") else "/authgate/v1")


def _segment(value: str) -> str:
    # An id or email is one path segment, whatever it holds ("/", "..", "?").
    return quote(value, safe="")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # A login's body holds a password: never in a repr.
    body: Any = field(default=None, repr=False)
    # A login must not carry a credential: the server refuses both at once.
    authenticated: bool = True

    # -- service ------------------------------------------------------------------------
    @classmethod
    def health(cls) -> Call:
        return cls("GET", "/health", authenticated=False)

    @classmethod
    def ready(cls) -> Call:
        return cls("GET", "/ready", authenticated=False)

    @classmethod
    def info(cls) -> Call:
        return cls("GET", "/info", authenticated=False)

    @classmethod
    def whoami(cls) -> Call:
        return cls("GET", "/whoami")

    @classmethod
    def scopes(cls) -> Call:
        return cls("GET", "/scopes")

    # -- tokens -------------------------------------------------------------------------
    @classmethod
    def login(
        cls,
        email: str,
        password: str,
        name: str,
        scopes: Sequence[str] | None,
        expires_in_days: int | None,
    ) -> Call:
        body = _token_body(name, scopes, expires_in_days)
        body.update(email=email, password=password)
        return cls("POST", "/tokens", body=body, authenticated=False)

    @classmethod
    def create_token(
        cls, name: str, scopes: Sequence[str] | None, expires_in_days: int | None
    ) -> Call:
        return cls("POST", "/tokens", body=_token_body(name, scopes, expires_in_days))

    @classmethod
    def list_tokens(cls, everyone: bool) -> Call:
        # Only asked for: a member asking for everyone's gets a 403.
        return cls("GET", "/tokens", params={"all": "true"} if everyone else {})

    @classmethod
    def page_tokens(cls, everyone: bool, search: str | None, limit: int, offset: int) -> Call:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if everyone:
            params["all"] = "true"
        if search is not None:
            params["search"] = search
        return cls("GET", "/tokens", params=params)

    @classmethod
    def get_token(cls, key_id: str) -> Call:
        return cls("GET", f"/tokens/{_segment(key_id)}")

    @classmethod
    def revoke_token(cls, key_id: str) -> Call:
        return cls("DELETE", f"/tokens/{_segment(key_id)}")

    @classmethod
    def revoke_current(cls) -> Call:
        return cls("DELETE", "/tokens/current")

    @classmethod
    def rotate_token(cls, key_id: str, grace: timedelta | None) -> Call:
        body = None if grace is None else {"grace_seconds": int(grace.total_seconds())}
        return cls("POST", f"/tokens/{_segment(key_id)}/rotate", body=body)

    @classmethod
    def report_leaks(cls, tokens: Sequence[str], url: str) -> Call:
        # A report carries the tokens themselves: never in a repr (``body`` has none).
        return cls("POST", "/leaks", body=[{"token": token, "url": url} for token in tokens])

    # -- users --------------------------------------------------------------------------
    @classmethod
    def create_user(cls, email: str, password: str, role: str) -> Call:
        return cls("POST", "/users", body={"email": email, "password": password, "role": role})

    @classmethod
    def list_users(cls) -> Call:
        return cls("GET", "/users")

    @classmethod
    def get_user(cls, user: str) -> Call:
        return cls("GET", f"/users/{_segment(user)}")

    @classmethod
    def update_user(cls, user: str, role: str | None, active: bool | None) -> Call:
        body = {
            name: value for name, value in (("role", role), ("active", active)) if value is not None
        }
        return cls("PATCH", f"/users/{_segment(user)}", body=body)

    @classmethod
    def reset_password(cls, user: str, password: str) -> Call:
        return cls("POST", f"/users/{_segment(user)}/password", body={"password": password})

    # -- access keys --------------------------------------------------------------------
    @classmethod
    def create_access_key(cls, name: str, grants: Mapping[str, str] | None) -> Call:
        return cls("POST", "/access-keys", body={"name": name, "grants": dict(grants or {})})

    @classmethod
    def list_access_keys(cls) -> Call:
        return cls("GET", "/access-keys")

    @classmethod
    def get_access_key(cls, ident: str) -> Call:
        return cls("GET", f"/access-keys/{_segment(ident)}")

    @classmethod
    def revoke_access_key(cls, ident: str) -> Call:
        return cls("DELETE", f"/access-keys/{_segment(ident)}")

    @classmethod
    def set_grant(cls, ident: str, bucket: str, permission: str) -> Call:
        path = f"/access-keys/{_segment(ident)}/grants/{_segment(bucket)}"
        return cls("PUT", path, body={"permission": permission})

    @classmethod
    def delete_grant(cls, ident: str, bucket: str) -> Call:
        return cls("DELETE", f"/access-keys/{_segment(ident)}/grants/{_segment(bucket)}")

    # -- console sessions ---------------------------------------------------------------
    @classmethod
    def list_sessions(cls, user: str | None) -> Call:
        return cls("GET", "/sessions", params={"user": user} if user is not None else {})

    @classmethod
    def end_session(cls, session_id: str) -> Call:
        return cls("DELETE", f"/sessions/{_segment(session_id)}")

    # -- settings -----------------------------------------------------------------------
    @classmethod
    def settings(cls) -> Call:
        return cls("GET", "/settings")

    @classmethod
    def update_settings(cls, changes: Mapping[str, Any]) -> Call:
        return cls("PATCH", "/settings", body=dict(changes))

    # -- audit --------------------------------------------------------------------------
    @classmethod
    def audit(
        cls,
        *,
        actor: str | None,
        action: str | None,
        key: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> Call:
        params: dict[str, Any] = {
            name: value
            for name, value in (
                ("actor", actor),
                ("action", action),
                ("key", key),
                ("since", since.isoformat() if since else None),
                ("until", until.isoformat() if until else None),
            )
            if value is not None
        }
        return cls("GET", "/audit", params={**params, "limit": limit, "offset": offset})


def _token_body(
    name: str, scopes: Sequence[str] | None, expires_in_days: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    return body
