"""Shared fixtures: a store on every back end, settings, runtimes and live servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from authgate.runtime import Runtime
from authgate.settings import Settings, load_settings
from tests.support import POSTGRES_ADMIN_URL

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's AUTHGATE_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("AUTHGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"authgate_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, data_dir: Path) -> str:
    """Every store test runs on SQLite (the embedded default) and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{data_dir / 'authgate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_settings(data_dir: Path, database_url: str) -> Any:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
        # Room for a loaded test machine; the fault tests hold the default deadline.
        values["store_timeout"] = 5.0
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture
def runtime(make_settings: Any) -> Iterator[Runtime]:
    """A started runtime (migrated store, admin key, watcher) on each back end."""
    rt = Runtime(make_settings())
    rt.start()
    try:
        yield rt
    finally:
        rt.close()
