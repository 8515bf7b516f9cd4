"""Fixtures of the access key suite: runtimes on each back end, botocore-signed requests,
raw reads of the stored secrets, and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.fernet import Fernet, MultiFernet

from authgate.facts import RequestFacts
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.sigv4 import SigV4Result
from authgate.store import open_store
from authgate.store.schema import access_keys
from tests.sigv4.support import facts_from_botocore
from tests.support import ROOMY_STORE, sql_store

ADMIN = Actor("tester", source="test")
ENDPOINT = "http://s3.authgate.test"


def signed_get(
    access_key_id: str, secret: str, path: str = "/bucket/key.txt", *, region: str = "us-east-1"
) -> RequestFacts:
    """A GET signed by botocore's own S3 signer, as the server would receive it."""
    request = AWSRequest(method="GET", url=ENDPOINT + path)
    S3SigV4Auth(Credentials(access_key_id, secret), "s3", region).add_auth(request)
    facts, _body = facts_from_botocore(request)
    return facts


def verifies(runtime: Runtime, access_key_id: str, secret: str) -> SigV4Result:
    return runtime.sigv4.verify(signed_get(access_key_id, secret))


def raw_secrets(database_url: str) -> dict[str, str]:
    """internal id → the secret column as stored, read past authgate's own code."""
    store = open_store(database_url, ROOMY_STORE)
    try:
        with sql_store(store).engine.connect() as conn:
            rows = conn.execute(sa.select(access_keys.c.id, access_keys.c.secret_encrypted)).all()
    finally:
        store.close()
    return {str(row.id): str(row.secret_encrypted) for row in rows}


def file_keys(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def fernet_of(path: Path) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in file_keys(path)])


@pytest.fixture
def open_runtime(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on the test's store; each like a separate process (own caches, own key)."""
    opened: list[Runtime] = []

    def factory(*, start: bool = False, **overrides: Any) -> Runtime:
        runtime = Runtime(make_settings(**overrides))
        opened.append(runtime)
        if start:
            runtime.start()
        else:
            runtime.prepare_store()
        return runtime

    yield factory
    for runtime in reversed(opened):
        runtime.close()
