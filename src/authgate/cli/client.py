"""One interface for the ``keys``, ``users`` and ``audit`` commands, two ways to serve it:
the local data folder (``LocalBackend``) or a server's HTTP API (``RemoteBackend``, with
``--url`` / ``AUTHGATE_URL`` and ``--token`` / ``AUTHGATE_TOKEN``).

Both hand back the same dictionaries (the API's JSON is the records' own metadata), so a
command prints the same table or JSON either way, and an API error becomes the same
``AuthgateError`` (hence message and exit code) the local service would have raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import typer
from platformdirs import user_config_dir

from authgate.cli.context import local_runtime, state_of
from authgate.errors import (
    AuthgateError,
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    MissingCredentials,
    NotFound,
    NotReady,
    RateLimited,
)
from authgate.keys import Actor
from authgate.runtime import Runtime
from authgate.securefiles import ensure_private_dir, read_secret_file, write_secret_file
from authgate.users import user_dict

__all__ = [
    "Backend",
    "LocalBackend",
    "RemoteBackend",
    "api_base",
    "credentials_file",
    "open_backend",
    "raise_for_status",
    "remember_token",
    "stored_token",
]

CLI_ACTOR = Actor("cli", source="cli")
AUDIT_PAGE = 1000
DAY = timedelta(days=1)


class Backend(Protocol):
    def create_key(
        self, *, name: str, scopes: Sequence[str], expires_in: timedelta | None
    ) -> dict[str, Any]: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def get_key(self, key_id: str) -> dict[str, Any]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]: ...

    def add_user(self, *, email: str, password: str, role: str) -> dict[str, Any]: ...
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

    def list_keys(self) -> list[dict[str, Any]]:
        return [record.metadata(self._now()) for record in self._runtime.keys.list(everyone=True)]

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self._runtime.keys.get(key_id).metadata(self._now())

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._runtime.keys.revoke(self._actor, key_id).metadata(self._now())

    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]:
        created = self._runtime.keys.rotate(self._actor, key_id, grace=grace)
        return {"token": created.token, **created.record.metadata(self._now())}

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
            actor=actor, action=action, target=key, since=since, until=until, limit=limit
        )
        return [event.as_dict() for event in events]


class RemoteBackend:
    """A server's ``/authgate/v1`` API, with the caller's token."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise NotReady(f"cannot reach {self._client.base_url}: {exc}") from None
        raise_for_status(response)
        return response.json()

    def create_key(
        self, *, name: str, scopes: Sequence[str], expires_in: timedelta | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if expires_in is not None:
            if expires_in % DAY:
                raise InvalidRequest("--expires-in: the server takes whole days (e.g. 30d).")
            body["expires_in_days"] = expires_in // DAY
        return _token_first(self._call("POST", "/tokens", json=body))

    def list_keys(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/tokens", params={"all": "true"})
        return result

    def get_key(self, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/tokens/{_segment(key_id)}")
        return result

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", f"/tokens/{_segment(key_id)}")
        return result

    def rotate_key(self, key_id: str, *, grace: timedelta) -> dict[str, Any]:
        body = {"grace_seconds": int(grace.total_seconds())}
        return _token_first(self._call("POST", f"/tokens/{_segment(key_id)}/rotate", json=body))

    def add_user(self, *, email: str, password: str, role: str) -> dict[str, Any]:
        body = {"email": email, "password": password, "role": role}
        result: dict[str, Any] = self._call("POST", "/users", json=body)
        return result

    def list_users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/users")
        return result

    def update_user(
        self, ident: str, *, role: str | None = None, active: bool | None = None
    ) -> dict[str, Any]:
        body = {
            name: value for name, value in (("role", role), ("active", active)) if value is not None
        }
        result: dict[str, Any] = self._call("PATCH", f"/users/{_segment(ident)}", json=body)
        return result

    def reset_password(self, ident: str, password: str) -> dict[str, Any]:
        path = f"/users/{_segment(ident)}/password"
        result: dict[str, Any] = self._call("POST", path, json={"password": password})
        return result

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
        events: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None and len(events) < limit:
            page_size = min(AUDIT_PAGE, limit - len(events))
            page = self._call(
                "GET", "/audit", params={**params, "limit": page_size, "offset": offset}
            )
            events.extend(page["events"])
            offset = page["next_offset"]
        return events


def _segment(value: str) -> str:
    return quote(value, safe="")


def _token_first(created: dict[str, Any]) -> dict[str, Any]:
    return {"token": created.pop("token"), **created}


# -- errors ---------------------------------------------------------------------------------
_BY_STATUS: dict[int, type[AuthgateError]] = {
    400: InvalidRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: NotReady,
}


def raise_for_status(response: httpx.Response) -> None:
    """The API's error as the ``AuthgateError`` the local service raises for it."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = _sentence(body.get("detail") if isinstance(body, dict) else None)
    if not detail:
        detail = f"the server answered {response.status_code} {response.reason_phrase}"
    if response.status_code == 401:
        missing = isinstance(body, dict) and body.get("code") == "missing_credentials"
        raise (MissingCredentials if missing else InvalidCredentials)(detail)
    raise _BY_STATUS.get(response.status_code, AuthgateError)(detail)


def _sentence(detail: Any) -> str | None:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for problem in detail:
            field = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "body"
            message = str(problem.get("msg", "invalid"))
            parts.append(message if message.startswith(field) else f"{field}: {message}")
        return "; ".join(parts)
    return None


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


def api_base(url: str) -> str:
    """``http://host:8080`` → ``http://host:8080/authgate/v1``; a URL already ending in
    ``/v1`` (a server with another ``http_prefix``) is used as it is."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        return base
    return base + ("/v1" if base.endswith("/authgate") else "/authgate/v1")


@contextmanager
def open_backend(ctx: typer.Context) -> Iterator[Backend]:
    """The remote API when a URL is given, else the local data folder."""
    state = state_of(ctx)
    if state.url is None:
        with local_runtime(ctx) as runtime:
            yield LocalBackend(runtime)
        return
    token = state.token or stored_token(state.url)
    if token is None:
        raise MissingCredentials(
            f"no token for {state.url}: pass --token, set AUTHGATE_TOKEN, "
            f"or run: authgate login --url {state.url} --email EMAIL"
        )
    headers = {"X-API-Key": token, "User-Agent": "authgate-cli"}
    with httpx.Client(base_url=api_base(state.url), headers=headers, timeout=30) as client:
        yield RemoteBackend(client)
