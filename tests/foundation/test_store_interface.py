"""The store's interface: ``Store`` is the record kinds' protocols together, and the
services ask for protocols, never for the SQL store."""

from __future__ import annotations

from pathlib import Path

import pytest

import authgate
from authgate.store import Store
from tests.store.test_protocols import PROTOCOLS, members

SERVICES = [
    "manage/keys",
    "manage/users",
    "manage/access_keys",
    "manage/lifecycle",
    "readiness",
    "runtime",
]


def test_store_is_every_record_kind_together() -> None:
    assert members(Store) == []  # nothing of its own beyond the kinds
    assert all(protocol in Store.__mro__ for protocol in PROTOCOLS)


@pytest.mark.parametrize("module", SERVICES)
def test_services_depend_on_the_protocols_not_on_the_sql_store(module: str) -> None:
    source = (Path(authgate.__file__).parent / f"{module}.py").read_text()
    assert "SqlStore" not in source
    assert "authgate.store.sql" not in source
