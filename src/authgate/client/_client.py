"""``AuthgateClient`` and ``AsyncAuthgateClient``: the token service's API over httpx.

Both send the same ``Call``s and read answers the same way; they differ only in being
awaited. The token travels in ``Authorization: Bearer`` through an ``httpx.Auth`` that
httpx's reprs and logs never show, and it is never part of an error.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

import httpx

from authgate import __version__
from authgate.client._calls import Call, api_base
from authgate.client._errors import ClientError, error_for, unreachable
from authgate.client._models import (
    AccessKey,
    AuditEvent,
    AuditPage,
    CreatedAccessKey,
    CreatedToken,
    LeakLabel,
    Session,
    Token,
    User,
)
from authgate.errors import ConfigurationError

__all__ = ["AsyncAuthgateClient", "AuthgateClient", "Verify"]

Verify = bool | str | os.PathLike[str] | ssl.SSLContext
DEFAULT_TIMEOUT = 10.0
AUDIT_PAGE = 1000
TOKEN_PAGE = 500  # tokens per request of iter_tokens (the API allows 1,000)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "<token>"


def tls_context(verify: Verify) -> ssl.SSLContext | bool:
    """``verify`` as httpx takes it: a path is a CA bundle (PEM) to trust, checked now so
    that a wrong path is said at once rather than as a failed handshake later."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    path = os.fspath(verify)
    try:
        return ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise ConfigurationError(f"CA bundle {path}: no such file.") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(f"CA bundle {path}: not a PEM certificate file ({exc}).") from None


def _deadline(timeout: float | httpx.Timeout) -> httpx.Timeout:
    if timeout is None:
        raise ConfigurationError("timeout: every call needs a deadline; give seconds.")
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


class _Base:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        verify: Verify,
        timeout: float | httpx.Timeout,
        user_agent: str | None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"url: {url!r} is not an http:// or https:// URL.")
        self.url = url.rstrip("/")
        self.api_url = api_base(url)
        self.token = token
        self._options: dict[str, Any] = {
            "base_url": self.url,
            "verify": tls_context(verify),
            "timeout": _deadline(timeout),
            "headers": {"User-Agent": user_agent or f"authgate-client/{__version__}"},
        }

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, token: str | None) -> None:
        self._token = token
        self._auth = _Bearer(token) if token else None

    def __repr__(self) -> str:
        held = "set" if self._token else "none"
        return f"{type(self).__name__}({self.url!r}, token=<{held}>)"

    def _args(self, call: Call) -> dict[str, Any]:
        return {
            "method": call.method,
            "url": self.api_url + call.path,
            "params": call.params,
            "json": call.body,
            "auth": self._auth if call.authenticated else None,
        }

    def _app_args(self, method: str, path: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"method": method, "url": path, "auth": self._auth, **kwargs}


def _checked(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise error_for(response)
    return response


def _json(response: httpx.Response) -> Any:
    _checked(response)
    try:
        return response.json()
    except ValueError:
        raise ClientError(
            response.status_code, "invalid_response", f"{response.url} answered with no JSON."
        ) from None


class AuthgateClient(_Base):
    """The token service of the authgate server at ``url``.

    ``token`` is a key or token to call with (``login`` sets one); ``verify`` is ``True``
    (the system's CAs), a CA bundle's path, an ``ssl.SSLContext``, or ``False``;
    ``timeout`` bounds every call. Errors are ``authgate.AuthgateError`` subclasses.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: Verify = True,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        user_agent: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, verify=verify, timeout=timeout, user_agent=user_agent)
        self._http = httpx.Client(transport=transport, **self._options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call) -> Any:
        return _json(self._transmit(self._args(call)))

    def _transmit(self, args: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.request(**args)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the protected app (``path`` from ``url``), with the token; an
        error answer raises as the API's do. ``kwargs`` go to ``httpx``."""
        return _checked(self._transmit(self._app_args(method, path, kwargs)))

    # -- service ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Call.health()))

    def ready(self) -> dict[str, Any]:
        """Readiness; a server that is not ready raises ``NotReady`` naming what fails."""
        return cast(dict[str, Any], self._send(Call.ready()))

    def info(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Call.info()))

    def whoami(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Call.whoami()))

    def scopes(self) -> list[dict[str, Any]]:
        """The scope catalogue: each scope, where it comes from, the roles that grant it."""
        return cast(list[dict[str, Any]], self._send(Call.scopes()))

    # -- tokens -------------------------------------------------------------------------
    def login(
        self,
        email: str,
        password: str,
        *,
        name: str,
        scopes: Sequence[str] | None = None,
        expires_in_days: int | None = None,
    ) -> CreatedToken:
        """Exchange email and password for a token, which this client then calls with."""
        call = Call.login(email, password, name, scopes, expires_in_days)
        created = cast(CreatedToken, self._send(call))
        self.token = created["token"]
        return created

    def create_token(
        self,
        name: str,
        *,
        scopes: Sequence[str] | None = None,
        expires_in_days: int | None = None,
    ) -> CreatedToken:
        """A service token (the caller needs ``tokens:manage``); shown once."""
        return cast(CreatedToken, self._send(Call.create_token(name, scopes, expires_in_days)))

    def list_tokens(self, *, everyone: bool = False) -> list[Token]:
        """The caller's tokens; ``everyone=True`` (admins): all it may act on."""
        return cast(list[Token], self._send(Call.list_tokens(everyone)))

    def iter_tokens(self, *, everyone: bool = False, search: str | None = None) -> Iterator[Token]:
        """``list_tokens`` a page at a time, newest first: for stores too large to list
        whole. ``search``: part of a name, id or hint. Tokens made meanwhile may shift a
        later page (one can come twice)."""
        offset = 0
        while True:
            page = cast(
                list[Token], self._send(Call.page_tokens(everyone, search, TOKEN_PAGE, offset))
            )
            yield from page
            if len(page) < TOKEN_PAGE:
                return
            offset += TOKEN_PAGE

    def get_token(self, key_id: str) -> Token:
        return cast(Token, self._send(Call.get_token(key_id)))

    def revoke_token(self, key_id: str) -> Token:
        return cast(Token, self._send(Call.revoke_token(key_id)))

    def revoke_current_token(self) -> Token:
        return cast(Token, self._send(Call.revoke_current()))

    def rotate_token(self, key_id: str, *, grace: timedelta | None = None) -> CreatedToken:
        """A successor; the old token keeps working for ``grace`` (server default: 24h)."""
        return cast(CreatedToken, self._send(Call.rotate_token(key_id, grace)))

    def report_leaks(self, tokens: Sequence[str], *, url: str = "") -> list[LeakLabel]:
        """Report tokens seen in public (``url``: where); each one of ours is revoked."""
        return cast(list[LeakLabel], self._send(Call.report_leaks(tokens, url)))

    # -- users --------------------------------------------------------------------------
    def create_user(self, email: str, password: str, *, role: str = "member") -> User:
        return cast(User, self._send(Call.create_user(email, password, role)))

    def list_users(self) -> list[User]:
        return cast(list[User], self._send(Call.list_users()))

    def get_user(self, user: str) -> User:
        """``user``: an id or an email."""
        return cast(User, self._send(Call.get_user(user)))

    def update_user(
        self, user: str, *, role: str | None = None, active: bool | None = None
    ) -> User:
        return cast(User, self._send(Call.update_user(user, role, active)))

    def reset_password(self, user: str, password: str) -> User:
        return cast(User, self._send(Call.reset_password(user, password)))

    # -- access keys --------------------------------------------------------------------
    def create_access_key(
        self, name: str, *, grants: Mapping[str, str] | None = None
    ) -> CreatedAccessKey:
        """A SigV4 access key; its secret is in the answer once."""
        return cast(CreatedAccessKey, self._send(Call.create_access_key(name, grants)))

    def list_access_keys(self) -> list[AccessKey]:
        return cast(list[AccessKey], self._send(Call.list_access_keys()))

    def get_access_key(self, ident: str) -> AccessKey:
        return cast(AccessKey, self._send(Call.get_access_key(ident)))

    def revoke_access_key(self, ident: str) -> AccessKey:
        return cast(AccessKey, self._send(Call.revoke_access_key(ident)))

    def set_grant(self, ident: str, bucket: str, permission: str) -> AccessKey:
        """Grant ``bucket`` — a name, or a pattern such as ``backup-*`` or ``*`` —
        (``read``, ``write`` or ``admin``), or change the grant."""
        return cast(AccessKey, self._send(Call.set_grant(ident, bucket, permission)))

    def delete_grant(self, ident: str, bucket: str) -> AccessKey:
        return cast(AccessKey, self._send(Call.delete_grant(ident, bucket)))

    # -- console sessions ---------------------------------------------------------------
    def list_sessions(self, *, user: str | None = None) -> list[Session]:
        """Live console sessions the caller may see, newest first; one user's if named."""
        return cast(list[Session], self._send(Call.list_sessions(user)))

    def end_session(self, session_id: str) -> Session:
        return cast(Session, self._send(Call.end_session(session_id)))

    # -- settings -----------------------------------------------------------------------
    def settings(self) -> list[dict[str, Any]]:
        """The settings saved in the store, secrets redacted (admins)."""
        return cast(list[dict[str, Any]], self._send(Call.settings()))

    def update_settings(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Save settings: ``None`` clears one; a secret sent as ``********`` is kept."""
        return cast(list[dict[str, Any]], self._send(Call.update_settings(changes)))

    # -- audit --------------------------------------------------------------------------
    def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AuditPage:
        """One page of the audit log, newest first (admins)."""
        call = Call.audit(
            actor=actor,
            action=action,
            key=key,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return cast(AuditPage, self._send(call))

    def iter_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEvent]:
        """Every matching event (at most ``limit``), newest first, a page at a time."""
        offset: int | None = 0
        seen = 0
        while offset is not None and (limit is None or seen < limit):
            size = AUDIT_PAGE if limit is None else min(AUDIT_PAGE, limit - seen)
            page = self.audit(
                actor=actor, action=action, key=key, since=since, until=until, limit=size,
                offset=offset,
            )  # fmt: skip
            yield from page["events"]
            seen += len(page["events"])
            offset = page["next_offset"]


class AsyncAuthgateClient(_Base):
    """``AuthgateClient``, awaited: the same methods and errors."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: Verify = True,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        user_agent: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, verify=verify, timeout=timeout, user_agent=user_agent)
        self._http = httpx.AsyncClient(transport=transport, **self._options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call) -> Any:
        return _json(await self._transmit(self._args(call)))

    async def _transmit(self, args: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.request(**args)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return _checked(await self._transmit(self._app_args(method, path, kwargs)))

    async def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Call.health()))

    async def ready(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Call.ready()))

    async def info(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Call.info()))

    async def whoami(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Call.whoami()))

    async def scopes(self) -> list[dict[str, Any]]:
        """The scope catalogue: each scope, where it comes from, the roles that grant it."""
        return cast(list[dict[str, Any]], await self._send(Call.scopes()))

    async def login(
        self,
        email: str,
        password: str,
        *,
        name: str,
        scopes: Sequence[str] | None = None,
        expires_in_days: int | None = None,
    ) -> CreatedToken:
        call = Call.login(email, password, name, scopes, expires_in_days)
        created = cast(CreatedToken, await self._send(call))
        self.token = created["token"]
        return created

    async def create_token(
        self,
        name: str,
        *,
        scopes: Sequence[str] | None = None,
        expires_in_days: int | None = None,
    ) -> CreatedToken:
        call = Call.create_token(name, scopes, expires_in_days)
        return cast(CreatedToken, await self._send(call))

    async def list_tokens(self, *, everyone: bool = False) -> list[Token]:
        return cast(list[Token], await self._send(Call.list_tokens(everyone)))

    async def iter_tokens(
        self, *, everyone: bool = False, search: str | None = None
    ) -> AsyncIterator[Token]:
        offset = 0
        while True:
            call = Call.page_tokens(everyone, search, TOKEN_PAGE, offset)
            page = cast(list[Token], await self._send(call))
            for token in page:
                yield token
            if len(page) < TOKEN_PAGE:
                return
            offset += TOKEN_PAGE

    async def get_token(self, key_id: str) -> Token:
        return cast(Token, await self._send(Call.get_token(key_id)))

    async def revoke_token(self, key_id: str) -> Token:
        return cast(Token, await self._send(Call.revoke_token(key_id)))

    async def revoke_current_token(self) -> Token:
        return cast(Token, await self._send(Call.revoke_current()))

    async def rotate_token(self, key_id: str, *, grace: timedelta | None = None) -> CreatedToken:
        return cast(CreatedToken, await self._send(Call.rotate_token(key_id, grace)))

    async def report_leaks(self, tokens: Sequence[str], *, url: str = "") -> list[LeakLabel]:
        return cast(list[LeakLabel], await self._send(Call.report_leaks(tokens, url)))

    async def create_user(self, email: str, password: str, *, role: str = "member") -> User:
        return cast(User, await self._send(Call.create_user(email, password, role)))

    async def list_users(self) -> list[User]:
        return cast(list[User], await self._send(Call.list_users()))

    async def get_user(self, user: str) -> User:
        return cast(User, await self._send(Call.get_user(user)))

    async def update_user(
        self, user: str, *, role: str | None = None, active: bool | None = None
    ) -> User:
        return cast(User, await self._send(Call.update_user(user, role, active)))

    async def reset_password(self, user: str, password: str) -> User:
        return cast(User, await self._send(Call.reset_password(user, password)))

    async def create_access_key(
        self, name: str, *, grants: Mapping[str, str] | None = None
    ) -> CreatedAccessKey:
        return cast(CreatedAccessKey, await self._send(Call.create_access_key(name, grants)))

    async def list_access_keys(self) -> list[AccessKey]:
        return cast(list[AccessKey], await self._send(Call.list_access_keys()))

    async def get_access_key(self, ident: str) -> AccessKey:
        return cast(AccessKey, await self._send(Call.get_access_key(ident)))

    async def revoke_access_key(self, ident: str) -> AccessKey:
        return cast(AccessKey, await self._send(Call.revoke_access_key(ident)))

    async def set_grant(self, ident: str, bucket: str, permission: str) -> AccessKey:
        return cast(AccessKey, await self._send(Call.set_grant(ident, bucket, permission)))

    async def delete_grant(self, ident: str, bucket: str) -> AccessKey:
        return cast(AccessKey, await self._send(Call.delete_grant(ident, bucket)))

    # -- console sessions ---------------------------------------------------------------
    async def list_sessions(self, *, user: str | None = None) -> list[Session]:
        """Live console sessions the caller may see, newest first; one user's if named."""
        return cast(list[Session], await self._send(Call.list_sessions(user)))

    async def end_session(self, session_id: str) -> Session:
        return cast(Session, await self._send(Call.end_session(session_id)))

    # -- settings -----------------------------------------------------------------------
    async def settings(self) -> list[dict[str, Any]]:
        """The settings saved in the store, secrets redacted (admins)."""
        return cast(list[dict[str, Any]], await self._send(Call.settings()))

    async def update_settings(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Save settings: ``None`` clears one; a secret sent as ``********`` is kept."""
        return cast(list[dict[str, Any]], await self._send(Call.update_settings(changes)))

    async def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AuditPage:
        call = Call.audit(
            actor=actor,
            action=action,
            key=key,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return cast(AuditPage, await self._send(call))

    async def iter_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AuditEvent]:
        offset: int | None = 0
        seen = 0
        while offset is not None and (limit is None or seen < limit):
            size = AUDIT_PAGE if limit is None else min(AUDIT_PAGE, limit - seen)
            page = await self.audit(
                actor=actor, action=action, key=key, since=since, until=until, limit=size,
                offset=offset,
            )  # fmt: skip
            for event in page["events"]:
                yield event
            seen += len(page["events"])
            offset = page["next_offset"]
