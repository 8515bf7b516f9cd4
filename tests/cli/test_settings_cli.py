"""``authgate settings``: the settings saved in the store, on the data folder and through a
server, secrets never printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from authgate.runtime import Runtime
from tests.api.service import Service

SECRET_URL = "redis://:hunter2-not-shown@127.0.0.1:6399/0"


def views(result: Result) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return {view["name"]: view for view in json.loads(result.stdout)}


def test_set_list_and_clear_on_the_data_folder(local_cli: Any, local: Runtime) -> None:
    saved = views(local_cli("settings", "set", "token_days_max", "60", "--json"))
    assert saved["token_days_max"]["saved"] == 60
    assert saved["token_days_max"]["source"] == "saved"
    assert saved["token_days_max"]["pending"] is True
    assert local.store.get_settings()["token_days_max"] == 60

    listed = views(local_cli("settings", "list", "--json"))
    assert listed["token_days_max"]["saved"] == 60
    assert listed["scopes"]["source"] == "default"

    cleared = views(local_cli("settings", "clear", "token_days_max", "--json"))
    assert cleared["token_days_max"]["saved"] is None
    assert "token_days_max" not in local.store.get_settings()

    events = [event for event in local.store.list_audit(action="settings.update")]
    assert [event.detail["changes"]["token_days_max"] for event in events] == [
        {"old": 60, "new": None},
        {"old": None, "new": 60},
    ]


def test_a_secret_is_kept_but_never_printed(local_cli: Any, local: Runtime) -> None:
    table = local_cli("settings", "set", "redis_url", SECRET_URL)
    assert table.exit_code == 0, table.output
    assert "hunter2" not in table.output
    listed = local_cli("settings", "list", "--json")
    assert "hunter2" not in listed.output
    assert views(listed)["redis_url"]["saved"] == "********"
    assert local.store.get_settings()["redis_url"] == SECRET_URL

    # The marker sent back keeps the stored secret.
    kept = local_cli("settings", "set", "redis_url", "********")
    assert kept.exit_code == 0, kept.output
    assert local.store.get_settings()["redis_url"] == SECRET_URL
    audited = local.store.list_audit(action="settings.update")
    assert len(audited) == 1
    assert audited[0].detail["changes"]["redis_url"] == {"changed": True, "cleared": False}
    assert "hunter2" not in json.dumps(audited[0].detail)


def test_bad_names_and_values_exit_2_with_a_suggestion(local_cli: Any, local: Runtime) -> None:
    unknown = local_cli("settings", "set", "token_day_max", "3")
    assert unknown.exit_code == 2
    assert "Did you mean 'token_days_max'?" in unknown.output
    bad = local_cli("settings", "set", "login_rate_limit", "often")
    assert bad.exit_code == 2
    assert "login_rate_limit" in bad.output
    across = local_cli("settings", "set", "token_days_max", "7")  # below the default of 30
    assert across.exit_code == 2
    assert "token_days_default" in across.output
    assert local.store.get_settings() == {}


@pytest.fixture
def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'authgate.db'}"


def test_through_a_server_admins_only(service: Service, remote_cli: Any) -> None:
    remote = remote_cli

    saved = views(
        remote("settings", "set", "redis_url", SECRET_URL, "--json", token=service.admin_key)
    )
    assert saved["redis_url"]["saved"] == "********"
    assert service.runtime.store.get_settings()["redis_url"] == SECRET_URL

    service.user("carol@example.com")
    member = service.login("carol@example.com")["token"]
    refused = remote("settings", "list", token=member)
    assert refused.exit_code == 3, refused.output
