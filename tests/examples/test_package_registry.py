"""The package-registry example, on a real uvicorn server, driven by examples/client.py
(itself on ``authgate.client``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from examples.client import RegistryClient
from examples.package_registry.app import create_app

from authgate import Forbidden, MissingCredentials, NotFound
from authgate.credentials.bootstrap import read_admin_key
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import Settings
from tests.support import live_server

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "client.py"
RUN_WITHOUT_REQUESTS = (
    "import runpy, sys; sys.modules['requests'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture
def registry(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, Runtime]]:
    """The example app on SQLite and on PostgreSQL; the localhost bypass is off, so the
    test client on 127.0.0.1 is treated like any other."""
    runtime = Runtime(make_settings(localhost_bypass="off"))
    runtime.start()
    try:
        with live_server(create_app(runtime=runtime)) as url:
            yield url, runtime
    finally:
        runtime.close()


def token(runtime: Runtime, name: str, *scopes: str) -> str:
    return runtime.keys.create(Actor("tests"), name=name, scopes=scopes).token


def test_reads_are_public_writes_need_a_scope_moderation_needs_admin(
    registry: tuple[str, Runtime],
) -> None:
    url, rt = registry
    assert rt.admin_key is not None
    with (
        RegistryClient(url) as anonymous,
        RegistryClient(url, token(rt, "publisher", "packages:write")) as writer,
        RegistryClient(url, token(rt, "reader", "packages:read")) as reader,
        RegistryClient(url, read_admin_key(rt.admin_key.path)) as admin,
    ):
        _moderate(anonymous, writer, reader, admin)


def _moderate(
    anonymous: RegistryClient, writer: RegistryClient, reader: RegistryClient, admin: RegistryClient
) -> None:

    assert anonymous.list_packages() == []
    with pytest.raises(MissingCredentials) as missing:
        anonymous.submit("demo", "1.0")
    assert (missing.value.status, missing.value.code) == (401, "missing_credentials")
    with pytest.raises(Forbidden) as scoped:
        reader.submit("demo", "1.0")
    assert (scoped.value.status, scoped.value.code) == (403, "forbidden")

    submitted = writer.submit("demo", "1.0", "A demo package")
    assert submitted["status"] == "pending" and submitted["submitted_by"] == "publisher"
    writer.submit("other", "0.1", "Another one")
    # Pending packages are not listed to the public, but the signed-in caller sees them.
    assert anonymous.list_packages() == []
    assert [p["name"] for p in writer.list_packages()] == ["demo", "other"]
    assert anonymous.show("demo")["status"] == "pending"

    with pytest.raises(Forbidden) as not_admin:
        writer.approve("demo")
    assert (not_admin.value.status, not_admin.value.code) == (403, "forbidden")
    assert admin.approve("demo")["status"] == "approved"
    assert admin.reject("other")["status"] == "rejected"

    assert [p["name"] for p in anonymous.list_packages()] == ["demo"]
    assert [p["name"] for p in anonymous.search("DEMO")] == ["demo"]
    assert anonymous.search("another") == []
    with pytest.raises(NotFound) as unknown:
        anonymous.show("nope")
    assert unknown.value.status == 404


def test_unlisted_methods_are_denied(registry: tuple[str, Runtime]) -> None:
    url, rt = registry
    headers = {"X-API-Key": token(rt, "publisher", "packages:write")}
    response = httpx.delete(url + "/packages/demo", headers=headers, timeout=10)
    assert response.status_code == 403
    assert response.json() == {"detail": "No rule allows this request.", "code": "forbidden"}


def test_the_docs_are_public_and_show_the_schemes(registry: tuple[str, Runtime]) -> None:
    url, _ = registry
    assert httpx.get(url + "/docs", timeout=10).status_code == 200
    document = httpx.get(url + "/openapi.json", timeout=10).json()
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}


def test_the_client_script(registry: tuple[str, Runtime]) -> None:
    url, rt = registry
    publisher = token(rt, "publisher", "packages:write")

    def run(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin"}
        if key:
            env["AUTHGATE_TOKEN"] = key
        # requests is blocked: the README's install does not have it, and the script must
        # run after that install alone.
        return subprocess.run(
            [sys.executable, "-c", RUN_WITHOUT_REQUESTS, str(CLIENT), "--url", url, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    denied = run("submit", "cli-pkg", "2.0")
    assert denied.returncode == 1 and "401 missing_credentials" in denied.stderr
    done = run("submit", "cli-pkg", "2.0", "from the script", key=publisher)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "cli-pkg"
    shown = run("show", "cli-pkg")
    assert json.loads(shown.stdout)["summary"] == "from the script"
