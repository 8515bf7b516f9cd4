"""Fixtures of the fault tests: dependencies of their own, to stop, kill and resume."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.pgcluster import PgCluster
from tests.faults.redisserver import redis_server  # noqa: F401


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of the fault tests' own, running; stopped and removed after."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def running_cluster(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    """The cluster, resumed (or restarted) after the test whatever the test did to it."""
    try:
        yield pg_cluster
    finally:
        pg_cluster.resume()
        if not pg_cluster.processes():
            pg_cluster.start()
