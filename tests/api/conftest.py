"""Fixtures: a started runtime on each back end behind a live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from authgate.runtime import Runtime
from tests.api.service import Service, serve


@pytest.fixture
def make_service(make_settings: Any) -> Iterator[Callable[..., Service]]:
    """A started runtime with these settings behind a live server."""
    with ExitStack() as stack:

        def factory(**overrides: Any) -> Service:
            runtime = Runtime(make_settings(**overrides))
            runtime.start()
            stack.callback(runtime.close)
            return stack.enter_context(serve(runtime))

        yield factory


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    # Plenty of logins per test; the limit itself is tested with the default setting.
    return make_service(login_rate_limit="1000/minute")
