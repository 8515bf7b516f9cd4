"""Helpers of the console's attack tests: a real ``authgate serve``, a browser-like
client that signs in through the login form, and direct reads of the store's tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from authgate.credentials.bootstrap import read_admin_key
from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.support import free_port

CONSOLE = "/authgate/console"
OPERATOR = "admin"
OPERATOR_PASSWORD = "operator password for the attack tests"
USER_PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class Served:
    process: ServeProcess
    data_dir: Path
    database_url: str

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": read_admin_key(self.data_dir / "admin.key")}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.admin, **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.url}/authgate/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def add_user(self, email: str, role: str = "member") -> str:
        made = self.api("POST", "/users", json={"email": email, "password": USER_PASSWORD,
                                                 "role": role})  # fmt: skip
        assert made.status_code == 201, made.text
        user_id: str = made.json()["id"]
        return user_id

    def rows(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of one of the store's tables, read past the service."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                found = sa.Table(table, sa.MetaData(), autoload_with=conn)
                query = sa.select(found)
                for name, value in where.items():
                    query = query.where(found.c[name] == value)
                return [dict(row._mapping) for row in conn.execute(query)]
        finally:
            engine.dispose()


@contextmanager
def serve(
    workdir: Path, *args: str, database_url: str | None = None, **env: str
) -> Iterator[Served]:
    """``authgate serve`` on loopback with a data folder of its own; ``env`` adds
    ``AUTHGATE_*`` variables (bypass off and the operator password unless given)."""
    data_dir = workdir / "data"
    defaults = {"AUTHGATE_PASSWORD": OPERATOR_PASSWORD, "AUTHGATE_LOCALHOST_BYPASS": "off"}
    environment = clean_env(AUTHGATE_DATA_DIR=str(data_dir), **{**defaults, **env})
    if database_url is not None:
        environment["AUTHGATE_DATABASE_URL"] = database_url
    host = "::1" if "::1" in args else "127.0.0.1"
    with serve_process(workdir, free_port(host), *args, env=environment, host=host) as process:
        url = database_url or f"sqlite:///{data_dir / 'authgate.db'}"
        yield Served(process, data_dir, url.replace("postgresql://", "postgresql+psycopg://", 1))


def browser(served: Served, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=30, follow_redirects=False, **kwargs)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def login(
    client: httpx.Client, identity: str, password: str, next_page: str | None = None
) -> httpx.Response:
    """Sign in through the form, as a browser would (its page first, for the token)."""
    page = client.get(f"{CONSOLE}/login")
    assert page.status_code == 200, page.text
    form = {"csrf": csrf_of(page), "identity": identity, "password": password}
    if next_page is not None:
        form["next"] = next_page
    return client.post(f"{CONSOLE}/login", data=form)


def signed_in(served: Served, identity: str = OPERATOR, password: str = OPERATOR_PASSWORD,
              ) -> tuple[httpx.Client, str]:  # fmt: skip
    """A client with a live session, and the form token of its pages."""
    client = browser(served)
    done = login(client, identity, password)
    assert done.status_code == 303, done.text
    page = client.get(f"{CONSOLE}/keys")
    assert page.status_code == 200, page.text
    return client, csrf_of(page)
