"""Fixtures: a live token service (uvicorn) for the client to talk to.

The client sees only HTTP, so one back end is enough here: the store suite covers both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.runtime import Runtime
from tests.api.service import Service, serve


@pytest.fixture
def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'authgate.db'}"


@pytest.fixture
def service(make_settings: object) -> Iterator[Service]:
    runtime = Runtime(make_settings(login_rate_limit="1000/minute"))  # type: ignore[operator]
    runtime.start()
    try:
        with serve(runtime) as live:
            yield live
    finally:
        runtime.close()
