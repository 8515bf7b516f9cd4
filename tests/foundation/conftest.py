"""Fixtures of the foundation suite (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authgate.store import SqlStore, open_store


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A migrated store on each back end."""
    opened = open_store(database_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()
