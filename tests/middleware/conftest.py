"""Runtimes on SQLite for middleware tests (the store-specific ones use ``runtime``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import Settings, load_settings

ACTOR = Actor("tests")


@pytest.fixture
def settings_for(data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": data_dir, "localhost_bypass": "off"}
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def runtime_for(settings_for: Callable[..., Settings]) -> Iterator[Callable[..., Runtime]]:
    """Started runtimes built from settings overrides, closed after the test."""
    made: list[Runtime] = []

    def make(**overrides: Any) -> Runtime:
        rt = Runtime(settings_for(**overrides))
        rt.start()
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def new_key(runtime: Runtime, name: str, *scopes: str) -> str:
    return runtime.keys.create(ACTOR, name=name, scopes=scopes).token


def admin_key(runtime: Runtime) -> str:
    assert runtime.admin_key is not None
    return runtime.admin_key.path.read_text().strip()
