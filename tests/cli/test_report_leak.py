"""``authgate keys report-leak``: tokens read from standard input, revoked on the local
data folder (every back end) and through a server's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from authgate.cli import app
from authgate.credentials.tokens import digest, generate_token
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from tests.api.service import Service, serve

EXIT_USAGE = 2


def test_report_leak_revokes_on_the_data_folder(local_cli: Any, local: Runtime) -> None:
    leaked = local.keys.create(Actor("test"), name="ci")
    kept = local.keys.create(Actor("test"), name="other")
    stranger = generate_token().token

    result = local_cli(
        "keys",
        "report-leak",
        "--found-at",
        "https://paste.example/1",
        input=f"{leaked.token}\n\n{stranger}\n",
    )

    assert result.exit_code == 0, result.output
    assert leaked.token not in result.output and stranger not in result.output
    assert "true_positive" in result.stdout and "false_positive" in result.stdout
    assert local.keys.get(leaked.record.id).revoked_at is not None
    assert local.keys.get(kept.record.id).revoked_at is None
    [entry] = [e for e in local.store.list_audit() if e.action == "key.revoke"]
    assert entry.target == leaked.record.id
    assert entry.detail["url"] == "https://paste.example/1"


def test_report_leak_json(local_cli: Any, local: Runtime) -> None:
    leaked = local.keys.create(Actor("test"), name="ci")
    result = local_cli("keys", "report-leak", "--json", input=leaked.token)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "token_hash": digest(leaked.token),
            "token_type": "authgate_api_key",
            "label": "true_positive",
        }
    ]


def test_report_leak_with_nothing_on_stdin_says_how(local_cli: Any) -> None:
    result = local_cli("keys", "report-leak", input="")
    assert result.exit_code == EXIT_USAGE
    assert "standard input" in result.output


def test_report_leak_through_the_api(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    leaked = runtime.keys.create(Actor("test"), name="ci")
    with serve(runtime) as service:
        result = _remote(service, tmp_path, leaked.token, token=service.admin_key)
        assert result.exit_code == 0, result.output
        assert "true_positive" in result.stdout
        assert runtime.keys.get(leaked.record.id).revoked_at is not None

        runtime.users.create(
            Actor("test"), email="bob@example.com", password="p" * 12, role="member"
        )
        other = runtime.keys.create(Actor("test"), name="other")
        bob = service.login("bob@example.com", password="p" * 12)["token"]
        refused = _remote(service, tmp_path, other.token, token=bob)
        assert refused.exit_code != 0
        assert "tokens:manage" in refused.output
        assert runtime.keys.get(other.record.id).revoked_at is None


def _remote(service: Service, tmp_path: Path, leaked: str, *, token: str) -> Result:
    prefix = ["--data-dir", str(tmp_path / "unused"), "--url", service.base_url, "--token", token]
    return CliRunner().invoke(app, [*prefix, "keys", "report-leak"], input=leaked + "\n")
