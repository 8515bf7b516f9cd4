"""Revocation reaches every instance sharing PostgreSQL, through Redis and through polling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.errors import InvalidCredentials
from authgate.facts import RequestFacts
from authgate.manage.keys import Actor
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.support import REDIS_URL, wait_until


def _facts(token: str) -> RequestFacts:
    return RequestFacts(method="GET", path="/", headers=(("x-api-key", token),))


@pytest.fixture
def two_instances(
    postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Runtime, Runtime]]:
    overrides: dict[str, Any] = dict(request.param)
    runtimes = []
    for name in ("a", "b"):
        settings = load_settings(data_dir=tmp_path / name, database_url=postgres_url, **overrides)
        runtime = Runtime(settings)
        runtime.start()
        runtimes.append(runtime)
    try:
        yield runtimes[0], runtimes[1]
    finally:
        for runtime in runtimes:
            runtime.close()


@pytest.mark.parametrize(
    "two_instances",
    [
        # Redis broadcast on, polling slowed right down: only the broadcast can be quick.
        {"redis_url": REDIS_URL, "change_poll_seconds": 30},
        # No Redis: the shared store's change feed carries the revocation.
        {"change_poll_seconds": 0.1},
    ],
    indirect=True,
    ids=["redis-broadcast", "change-feed"],
)
def test_revocation_on_one_instance_is_refused_by_the_other(
    two_instances: tuple[Runtime, Runtime],
) -> None:
    first, second = two_instances
    created = first.keys.create(Actor("test"), name="shared")
    facts = _facts(created.token)
    assert isinstance(second.authenticator.authenticate(facts), Principal)
    # The second instance now serves the key from memory.
    assert second.cache.get(created.record.digest) is not None

    first.keys.revoke(Actor("test"), created.record.id)

    assert wait_until(
        lambda: isinstance(second.authenticator.authenticate(facts), InvalidCredentials),
        timeout=1.0,
    )
