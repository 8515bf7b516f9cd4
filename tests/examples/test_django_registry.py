"""The Django package registry behind AuthgateWSGIMiddleware, on a real WSGI server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from examples.django_registry.app import create_app

from authgate.credentials.bootstrap import read_admin_key
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import Settings
from tests.foundation.helpers import clean_env
from tests.middleware.test_wsgi import wsgi_server
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, Runtime]]:
    """The Django app on SQLite and on PostgreSQL; the localhost bypass is off, so the
    test client on 127.0.0.1 is treated like any other."""
    runtime = Runtime(make_settings(localhost_bypass="off"))
    runtime.start()
    try:
        with wsgi_server(create_app(runtime=runtime)) as url:
            yield url, runtime
    finally:
        runtime.close()


def key(runtime: Runtime, name: str, *scopes: str) -> dict[str, str]:
    return {"X-API-Key": runtime.keys.create(Actor("tests"), name=name, scopes=scopes).token}


def test_reads_are_public_writes_need_a_scope_moderation_needs_admin(
    registry: tuple[str, Runtime],
) -> None:
    url, rt = registry
    writer = key(rt, "publisher", "packages:write")
    reader = key(rt, "reader", "packages:read")
    assert rt.admin_key is not None
    admin = {"X-API-Key": read_admin_key(rt.admin_key.path)}
    demo = {"name": "demo", "version": "1.0", "summary": "A demo package"}

    assert httpx.get(f"{url}/packages").json() == []
    missing = httpx.post(f"{url}/packages", json=demo)
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_credentials")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    scoped = httpx.post(f"{url}/packages", json=demo, headers=reader)
    assert (scoped.status_code, scoped.json()["code"]) == (403, "forbidden")
    bad = httpx.post(f"{url}/packages", json=demo, headers={"X-API-Key": "ag_not-a-token"})
    assert (bad.status_code, bad.json()["code"]) == (401, "invalid_token")

    submitted = httpx.post(f"{url}/packages", json=demo, headers=writer)
    assert submitted.status_code == 201
    assert submitted.json()["status"] == "pending"
    assert submitted.json()["submitted_by"] == "publisher"
    other = {"name": "other", "version": "0.1", "summary": "Another one"}
    assert httpx.post(f"{url}/packages", json=other, headers=writer).status_code == 201
    again = httpx.post(f"{url}/packages", json=demo, headers=writer)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")

    # Pending packages are not listed to the public, but the signed-in caller sees them.
    assert httpx.get(f"{url}/packages").json() == []
    names = [p["name"] for p in httpx.get(f"{url}/packages", headers=writer).json()]
    assert names == ["demo", "other"]
    assert httpx.get(f"{url}/packages/demo").json()["status"] == "pending"

    not_admin = httpx.post(f"{url}/packages/demo/approve", headers=writer)
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "forbidden")
    approved = httpx.post(f"{url}/packages/demo/approve", headers=admin)
    assert approved.json()["status"] == "approved"
    rejected = httpx.post(f"{url}/packages/other/reject", headers=admin)
    assert rejected.json()["status"] == "rejected"

    assert [p["name"] for p in httpx.get(f"{url}/packages").json()] == ["demo"]
    found = httpx.get(f"{url}/packages/search", params={"q": "DEMO"}).json()
    assert [p["name"] for p in found] == ["demo"]
    assert httpx.get(f"{url}/packages/search", params={"q": "another"}).json() == []
    assert httpx.get(f"{url}/packages/nope").status_code == 404


def test_unlisted_methods_and_paths_are_denied(registry: tuple[str, Runtime]) -> None:
    url, rt = registry
    writer = key(rt, "publisher", "packages:write")
    response = httpx.delete(f"{url}/packages/demo", headers=writer)
    assert response.status_code == 403
    assert response.json() == {"detail": "No rule allows this request.", "code": "forbidden"}
    # Default deny: a path no rule names needs a credential before Django sees it.
    assert httpx.get(f"{url}/admin/").status_code == 401


def test_a_bad_body_is_refused_with_the_field_named(registry: tuple[str, Runtime]) -> None:
    url, rt = registry
    writer = key(rt, "publisher", "packages:write")
    not_json = httpx.post(f"{url}/packages", content=b"{", headers=writer)
    assert (not_json.status_code, not_json.json()["code"]) == (400, "invalid_request")
    bad_name = httpx.post(
        f"{url}/packages", json={"name": "Bad Name", "version": "1"}, headers=writer
    )
    assert bad_name.status_code == 422 and bad_name.json()["detail"].startswith("name:")
    extra = httpx.post(
        f"{url}/packages", json={"name": "x", "version": "1", "owner": "me"}, headers=writer
    )
    assert extra.status_code == 422


def test_the_documented_command_serves_it(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "example.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.django_registry.app", "--port", str(port)],
            cwd=ROOT,
            env=clean_env(AUTHGATE_DATA_DIR=str(tmp_path / "data")),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/packages")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example did not answer"
                time.sleep(0.1)
        assert response.json() == []
        refused = httpx.post(f"http://127.0.0.1:{port}/packages", json={})
        assert refused.status_code == 401
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        made = httpx.post(
            f"http://127.0.0.1:{port}/packages",
            json={"name": "cli-pkg", "version": "2.0"},
            headers={"X-API-Key": admin},
        )
        assert made.status_code == 201, made.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
