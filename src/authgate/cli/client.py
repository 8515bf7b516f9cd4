"""One interface for the ``keys``, ``users`` and ``audit`` commands, two ways to serve it:
the local data folder (``LocalBackend``) or a server's HTTP API (``RemoteBackend``, on
``authgate.client``, with ``--url`` / ``AUTHGATE_URL``, ``--token`` / ``AUTHGATE_TOKEN``
and ``--cacert`` / ``AUTHGATE_CA_BUNDLE``).

Both hand back the same dictionaries (the API's JSON is the records' own metadata), so a
command prints the same table or JSON either way, and an API error becomes the same
``AuthgateError`` (hence message and exit code) the local service would have raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import typer
from platformdirs import user_config_dir

from authgate.cli.context import local_runtime, state_of
from authgate.client import AuthgateClient, api_base, error_for
from authgate.errors import InvalidRequest, MissingCredentials
from authgate.manage.keys import Actor
from authgate.manage.leaks import LeakReport
from authgate.manage.sessions import session_dict
from authgate.manage.users import audit_actor, user_dict
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.securefiles import ensure_private_dir, read_secret_file, write_secret_file

__all__ = [
    "Backend",
    "LocalBackend",
    "RemoteBackend",
    "api_base",
    "credentials_file",
    "open_backend",
    "open_client",
    "raise_for_status",
    "remember_token",
    "stored_token",
]

CLI_ACTOR = Actor("cli", source="cli")
# The data folder's operator: as able as the files it can read (no role checks apply).
CLI_PRINCIPAL = Principal(id="cli", name="cli", kind="local", scopes=frozenset({"*"}), role="admin")
DAY = timedelta(days=1)
CLI_TIMEOUT = 30.0


class Backend(Protocol):
    def create_key(
        self, *, name: str, scopes: Sequence[str], expires_in: timedelta | None
    ) -> dict[str, Any]: ...
    def list_keys(self, *, everyone: bool = False) -> list[dict[str, Any]]: ...
    def get_key(self, key_id: str) -> dict[str, Any]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]: ...

    def add_user(self, *, email: str, password: str, role: str) -> dict[str, Any]: ...
    def report_leaks(self, tokens: Sequence[str], *, url: str) -> list[dict[str, Any]]: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def update_user(
        self, ident: str, *, role: str | None = None, active: bool | None = None
    ) -> dict[str, Any]: ...
    def reset_password(self, ident: str, password: str) -> dict[str, Any]: ...

    def audit(
        self,
        *,
        actor: str | None,
        action: str | None,
        key: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]: ...

    def list_sessions(self, user: str | None) -> list[dict[str, Any]]: ...
    def end_session(self, session_id: str) -> dict[str, Any]: ...
    def settings(self) -> list[dict[str, Any]]: ...
    def update_settings(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]: ...


class LocalBackend:
    """The data folder (or ``AUTHGATE_DATABASE_URL``), as its operator: no role checks."""

    def __init__(self, runtime: Runtime, actor: Actor = CLI_ACTOR) -> None:
        self._runtime = runtime
        self._actor = actor

    def _now(self) -> datetime:
        return self._runtime.clock()

    def create_key(
        self, *, name: str, scopes: Sequence[str], expires_in: timedelta | None
    ) -> dict[str, Any]:
        created = self._runtime.keys.create(
            self._actor, name=name, scopes=scopes, expires_in=expires_in
        )
        return {"token": created.token, **created.record.metadata(self._now())}

    def list_keys(self, *, everyone: bool = False) -> list[dict[str, Any]]:
        # The data folder's operator acts on every key: there is no "own" to narrow to.
        return [record.metadata(self._now()) for record in self._runtime.keys.list(everyone=True)]

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self._runtime.keys.get(key_id).metadata(self._now())

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._runtime.keys.revoke(self._actor, key_id).metadata(self._now())

    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]:
        created = self._runtime.keys.rotate(self._actor, key_id, grace=grace)
        return {"token": created.token, **created.record.metadata(self._now())}

    def report_leaks(self, tokens: Sequence[str], *, url: str) -> list[dict[str, Any]]:
        reports = [LeakReport(token, url=url, source="cli") for token in tokens]
        return [finding.feedback() for finding in self._runtime.leaks.report(self._actor, reports)]

    def add_user(self, *, email: str, password: str, role: str) -> dict[str, Any]:
        users = self._runtime.users
        return user_dict(users.create(self._actor, email=email, password=password, role=role))

    def list_users(self) -> list[dict[str, Any]]:
        return [user_dict(user) for user in self._runtime.users.list()]

    def update_user(
        self, ident: str, *, role: str | None = None, active: bool | None = None
    ) -> dict[str, Any]:
        users = self._runtime.users
        user = users.get(ident)
        if role is not None:
            user = users.set_role(self._actor, user.id, role)
        if active is not None:
            user = users.set_active(self._actor, user.id, active)
        return user_dict(user)

    def reset_password(self, ident: str, password: str) -> dict[str, Any]:
        return user_dict(self._runtime.users.reset_password(self._actor, ident, password))

    def audit(
        self,
        *,
        actor: str | None,
        action: str | None,
        key: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        events = self._runtime.store.list_audit(
            **audit_actor(actor), action=action, target=key, since=since, until=until, limit=limit
        )
        return [event.as_dict() for event in events]

    def list_sessions(self, user: str | None) -> list[dict[str, Any]]:
        user_id = self._runtime.users.get(user).id if user is not None else None
        listed = self._runtime.sessions.list_for(CLI_PRINCIPAL, user_id)
        return [session_dict(record) for record in listed]

    def end_session(self, session_id: str) -> dict[str, Any]:
        ended = self._runtime.sessions.end_for(CLI_PRINCIPAL, self._actor, session_id)
        return session_dict(ended)

    def settings(self) -> list[dict[str, Any]]:
        views = self._runtime.stored_settings.view(CLI_PRINCIPAL)
        return [view.as_dict() for view in views]

    def update_settings(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        views = self._runtime.stored_settings.update(CLI_PRINCIPAL, self._actor, changes)
        return [view.as_dict() for view in views]


class RemoteBackend:
    """A server's ``/authgate/v1`` API through ``authgate.client``, with the caller's token."""

    def __init__(self, client: AuthgateClient) -> None:
        self._client = client

    def create_key(
        self, *, name: str, scopes: Sequence[str], expires_in: timedelta | None
    ) -> dict[str, Any]:
        days = None
        if expires_in is not None:
            if expires_in % DAY:
                raise InvalidRequest("--expires-in: the server takes whole days (e.g. 30d).")
            days = expires_in // DAY
        created = self._client.create_token(name, scopes=list(scopes), expires_in_days=days)
        return _token_first(dict(created))

    def list_keys(self, *, everyone: bool = False) -> list[dict[str, Any]]:
        return [dict(token) for token in self._client.list_tokens(everyone=everyone)]

    def get_key(self, key_id: str) -> dict[str, Any]:
        return dict(self._client.get_token(key_id))

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return dict(self._client.revoke_token(key_id))

    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]:
        return _token_first(dict(self._client.rotate_token(key_id, grace=grace)))

    def add_user(self, *, email: str, password: str, role: str) -> dict[str, Any]:
        return dict(self._client.create_user(email, password, role=role))

    def report_leaks(self, tokens: Sequence[str], *, url: str) -> list[dict[str, Any]]:
        return [dict(label) for label in self._client.report_leaks(tokens, url=url)]

    def list_users(self) -> list[dict[str, Any]]:
        return [dict(user) for user in self._client.list_users()]

    def update_user(
        self, ident: str, *, role: str | None = None, active: bool | None = None
    ) -> dict[str, Any]:
        return dict(self._client.update_user(ident, role=role, active=active))

    def reset_password(self, ident: str, password: str) -> dict[str, Any]:
        return dict(self._client.reset_password(ident, password))

    def audit(
        self,
        *,
        actor: str | None,
        action: str | None,
        key: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        events = self._client.iter_audit(
            actor=actor, action=action, key=key, since=since, until=until, limit=limit
        )
        return [dict(event) for event in events]

    def list_sessions(self, user: str | None) -> list[dict[str, Any]]:
        return [dict(session) for session in self._client.list_sessions(user=user)]

    def end_session(self, session_id: str) -> dict[str, Any]:
        return dict(self._client.end_session(session_id))

    def settings(self) -> list[dict[str, Any]]:
        return self._client.settings()

    def update_settings(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._client.update_settings(changes)


def _token_first(created: dict[str, Any]) -> dict[str, Any]:
    return {"token": created.pop("token"), **created}


def raise_for_status(response: httpx.Response) -> None:
    """The API's error as the ``AuthgateError`` the local service raises for it."""
    if not response.is_success:
        raise error_for(response)


# -- where the CLI keeps tokens from ``authgate login`` -------------------------------------
def credentials_file() -> Path:
    return Path(user_config_dir("authgate", appauthor=False)) / "credentials.json"


def _load_credentials(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_secret_file(path) or "{}")
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        raise InvalidRequest(f"{path} is not valid JSON; delete it and log in again.") from None
    return data if isinstance(data, dict) else {}


def stored_token(url: str, path: Path | None = None) -> str | None:
    entry = _load_credentials(path or credentials_file()).get(url.rstrip("/"))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) else None


def remember_token(url: str, entry: dict[str, Any], path: Path | None = None) -> Path:
    """Keep ``entry`` (with its token) for ``url`` in a 0600 file in a 0700 folder."""
    path = path or credentials_file()
    ensure_private_dir(path.parent)
    data = _load_credentials(path)
    data[url.rstrip("/")] = entry
    write_secret_file(path, json.dumps(data, indent=2) + "\n", overwrite=True)
    return path


@contextmanager
def open_client(
    ctx: typer.Context,
    *,
    url: str | None = None,
    cacert: Path | None = None,
    authenticated: bool = True,
) -> Iterator[AuthgateClient]:
    """``authgate.client`` on ``url`` (else ``--url``), trusting ``cacert`` (else
    ``--cacert`` / ``AUTHGATE_CA_BUNDLE``, else the system's CAs), with ``--token`` (else
    the one ``authgate login`` stored) unless ``authenticated`` is false."""
    state = state_of(ctx)
    server = url or state.url
    if server is None:
        raise InvalidRequest("no server: pass --url (or set AUTHGATE_URL).")
    token = None
    if authenticated:
        token = state.token or stored_token(server, state.credentials_file())
        if token is None:
            raise MissingCredentials(
                f"no token for {server}: pass --token, set AUTHGATE_TOKEN, "
                f"or run: authgate login --url {server} --email EMAIL"
            )
    bundle = cacert or state.cacert
    with AuthgateClient(
        server,
        token,
        verify=True if bundle is None else bundle,
        timeout=CLI_TIMEOUT,
        user_agent="authgate-cli",
    ) as client:
        yield client


@contextmanager
def open_backend(ctx: typer.Context) -> Iterator[Backend]:
    """The remote API when a URL is given, else the local data folder."""
    state = state_of(ctx)
    if state.url is None:
        with local_runtime(ctx) as runtime:
            yield LocalBackend(runtime)
        return
    with open_client(ctx) as client:
        yield RemoteBackend(client)
