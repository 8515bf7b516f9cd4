"""``authgate sessions``: the console's sessions listed and ended on the data folder and
through a server, on SQLite and PostgreSQL; what each caller may see is the API's rule."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import Result

from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.store.records import SessionRecord
from tests.api.service import Service


def listed(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    sessions: list[dict[str, Any]] = json.loads(result.stdout)
    return sessions


def start(runtime: Runtime, email: str) -> SessionRecord:
    user = runtime.users.get(email)
    return runtime.sessions.start(user=user, source="198.51.100.4", user_agent="test").record


def test_list_and_end_on_the_data_folder(local_cli: Any, local: Runtime) -> None:
    for email in ("ann@example.com", "bob@example.com"):
        local.users.create(Actor("test"), email=email, password="correct horse", role="member")
    ann, bob = start(local, "ann@example.com"), start(local, "bob@example.com")
    operator = local.sessions.start(operator="admin", source=None, user_agent=None).record

    everyone = listed(local_cli("sessions", "list", "--json"))
    assert {session["id"] for session in everyone} == {ann.id, bob.id, operator.id}
    assert all("digest" not in session for session in everyone)
    only_bob = listed(local_cli("sessions", "list", "--user", "bob@example.com", "--json"))
    assert [session["id"] for session in only_bob] == [bob.id]

    table = local_cli("sessions", "list")
    assert table.exit_code == 0, table.output
    assert "ann@example.com" in table.output and "operator admin" in table.output

    ended = local_cli("sessions", "end", bob.id)
    assert ended.exit_code == 0, ended.output
    assert f"Session {bob.id} of bob@example.com ended." in ended.output
    record = local.sessions.get(bob.id)
    assert record is not None and record.revoked_at is not None
    [event] = local.store.list_audit(action="session.revoke", target=bob.id)
    assert event.actor == "cli"

    again = local_cli("sessions", "end", bob.id)
    assert again.exit_code == 5, again.output  # conflict: already ended
    unknown = local_cli("sessions", "end", "ses_0000000000000000")
    assert unknown.exit_code == 4, unknown.output
    nobody = local_cli("sessions", "list", "--user", "nobody@example.com")
    assert nobody.exit_code == 4, nobody.output


def test_through_a_server_each_caller_sees_what_the_api_allows(
    service: Service, remote_cli: Any
) -> None:
    remote = remote_cli

    service.user("carol@example.com")
    service.user("dave@example.com")
    carols = start(service.runtime, "carol@example.com")
    daves = start(service.runtime, "dave@example.com")
    carol = service.login("carol@example.com")["token"]

    assert {s["id"] for s in listed(remote("sessions", "list", "--json", token=carol))} == {
        carols.id
    }
    refused = remote("sessions", "end", daves.id, token=carol)
    assert refused.exit_code == 4, refused.output  # another's session reads as missing
    record = service.runtime.sessions.get(daves.id)
    assert record is not None and record.revoked_at is None

    admin = service.admin_key
    everyone = listed(remote("sessions", "list", "--json", token=admin))
    assert {session["id"] for session in everyone} == {carols.id, daves.id}
    ended = remote("sessions", "end", daves.id, "--json", token=admin)
    assert ended.exit_code == 0, ended.output
    assert json.loads(ended.stdout)["revoked_at"] is not None
