"""A live token service (uvicorn + httpx) and helpers to act as someone, for the API and
client-mode CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from authgate.credentials.bootstrap import read_admin_key
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.store.records import UserRecord
from authgate.store.schema import api_keys, audit_events, users
from tests.support import live_server, sql_store

PASSWORD = "correct horse battery staple"


@dataclass
class Service:
    runtime: Runtime
    base_url: str
    client: httpx.Client
    admin_key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": self.admin_key}

    def user(self, email: str, role: str = "member", password: str = PASSWORD) -> UserRecord:
        return self.runtime.users.create(Actor("test"), email=email, password=password, role=role)

    def login(self, email: str, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
        body = {"email": email, "password": password, "name": "laptop", **fields}
        response = self.client.post("/tokens", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def token_of(self, email: str, **fields: Any) -> dict[str, str]:
        """Headers carrying a fresh token of the user's (logging in over HTTP)."""
        return {"X-API-Key": self.login(email, **fields)["token"]}

    def counts(self) -> dict[str, int]:
        """Rows per table: "nothing written" means these did not move."""
        with sql_store(self.runtime.store).engine.connect() as conn:
            return {
                table.name: int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for table in (users, api_keys, audit_events)
            }

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return [event.as_dict() for event in self.runtime.store.list_audit(**filters)]


@contextmanager
def serve(runtime: Runtime) -> Iterator[Service]:
    assert runtime.admin_key is not None
    admin_key = read_admin_key(runtime.admin_key.path)
    with (
        # As `authgate serve` runs it: the socket peer is never rewritten by uvicorn.
        live_server(create_app(runtime, manage_runtime=False), proxy_headers=False) as base_url,
        httpx.Client(base_url=f"{base_url}/authgate/v1", timeout=30) as client,
    ):
        yield Service(runtime, base_url, client, admin_key)
