"""Every block of docs/client.md runs against a real server and does what the page says:
the Python ones against a live uvicorn, the TLS ones against ``authgate serve --tls on``."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from authgate.runtime import Runtime
from tests.api.service import PASSWORD, Service, serve
from tests.foundation.helpers import AUTHGATE, self_signed_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "client.md"
BLOCK = re.compile(r"<!-- test: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def snippets() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = {name: code for name, _lang, code in BLOCK.findall(text)}
    # Every fenced block is tagged, so none escapes the test.
    assert len(found) == text.count("\n```") // 2
    return found


SNIPPETS = snippets()


@pytest.fixture
def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'authgate.db'}"


@pytest.fixture
def service(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with serve(runtime) as live:
        live.user("alice@example.com")
        monkeypatch.setenv("AUTHGATE_URL", live.base_url)
        monkeypatch.setenv("ALICE_PASSWORD", PASSWORD)
        monkeypatch.setenv("ADMIN_TOKEN", live.admin_key)
        yield live


def run(name: str) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": f"snippet_{name}"}
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(compile(SNIPPETS[name], f"{DOC}:{name}", "exec"), namespace)
    return namespace, printed.getvalue()


def test_login(service: Service) -> None:
    namespace, printed = run("login")
    assert printed == "True member\n"
    assert [token["name"] for token in namespace["mine"]] == ["laptop"]
    assert "token" not in namespace["mine"][0]


def test_tokens(service: Service) -> None:
    namespace, printed = run("tokens")
    assert printed.strip() == namespace["ci"]["token"]
    store = service.runtime.store
    assert store.get_key(namespace["ci"]["id"]).revoked_at is not None  # type: ignore[union-attr]
    assert namespace["successor"]["name"] == "ci-deploy"
    listed = {token["id"] for token in namespace["everyone"]}
    assert {namespace["ci"]["id"], namespace["successor"]["id"]} <= listed


def test_admin(service: Service) -> None:
    namespace, printed = run("admin")
    assert namespace["bob"]["email"] == "bob@example.com"
    assert service.runtime.users.get("bob@example.com").active is False
    backup = service.runtime.access_keys.get(namespace["backup"]["access_key_id"])
    assert dict(backup.grants) == {"media": "write"}
    # Newest first: bob, then alice (made for the page's other blocks).
    created = [event["target"] for event in namespace["page"]["events"]]
    assert created == [namespace["bob"]["id"], service.runtime.users.get("alice@example.com").id]
    assert " user.create " in printed and namespace["backup"]["secret_access_key"] in printed


def test_errors(service: Service) -> None:
    namespace, printed = run("errors")
    status, code, _ = printed.split(" ", 2)
    assert (status, code) == ("401", "invalid_login")
    assert namespace["refused"].status == 403


def test_async(service: Service) -> None:
    service.login("alice@example.com")
    _, printed = run("async")
    assert printed == "1 1\n"


def test_app(service: Service) -> None:
    _, printed = run("app")
    assert printed == "authgate\n"


# -- TLS: `authgate serve` with its self-signed certificate -------------------------------


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with self_signed_server(tmp_path, "alice@example.com", PASSWORD) as (url, cert, env):
        monkeypatch.setenv("TEAM_SERVER_URL", url)
        monkeypatch.setenv("AUTHGATE_CA_BUNDLE", str(cert))
        yield {**env, "TEAM_SERVER_URL": url, "AUTHGATE_CA_BUNDLE": str(cert)}


def test_tls(tls_server: dict[str, str]) -> None:
    _, printed = run("tls")
    assert printed == "{'status': 'ok'}\n"


def test_cli_commands_as_written(tls_server: dict[str, str]) -> None:
    env = {**tls_server, "PATH": f"{Path(AUTHGATE).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", SNIPPETS["cli"]],
        env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Logged in to" in done.stdout and "cli-" in done.stdout
