"""The store suite: every test here runs on SQLite and on PostgreSQL, against the store
``open_store`` builds from the URL. A test of one back end only belongs in
tests/foundation/test_store_backends.py; collection stops on one found here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.store import SqlStore, open_store
from tests.support import ROOMY_STORE

_HERE = Path(__file__).parent


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A migrated store on each back end."""
    opened = open_store(database_url, ROOMY_STORE)
    assert isinstance(opened, SqlStore)  # the suite reads the tables past the store too
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in Path(str(item.path)).parents:
            continue
        if "database_url" not in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(
                f"{item.nodeid} would run on one back end only: a store test takes the "
                "store or database_url fixture, so that it runs on SQLite and PostgreSQL"
            )
