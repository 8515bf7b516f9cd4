"""``/authgate/v1/sessions``: the console's sessions listed and ended over the REST API,
on SQLite and PostgreSQL. Sessions are made by signing in through the console's own login
form on the same live server, and an ended one is checked from its browser: the console
sends it back to the login page.

Who sees which is attacked as a caller would try it: a member naming another's session,
a ``users:manage`` holder reaching above their role, a credential with no user, ids that
are not ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from tests.api.service import PASSWORD, Service
from tests.console.attack import CONSOLE, login

MANAGER_ROLES = {
    "admin": ["read", "write", "tokens:manage", "users:manage"],
    "manager": ["read", "write", "users:manage"],
    "member": ["read", "write"],
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Service:
    return make_service(
        login_rate_limit="1000/minute", localhost_bypass="off", role_scopes=MANAGER_ROLES
    )


@pytest.fixture
def browsers(api: Service) -> Iterator[Callable[[str], httpx.Client]]:
    """Sign a user in to the console, as a browser would; closed after the test."""
    with ExitStack() as stack:

        def signed_in(email: str) -> httpx.Client:
            client = stack.enter_context(
                httpx.Client(base_url=api.base_url, timeout=30, follow_redirects=False)
            )
            done = login(client, email, PASSWORD)
            assert done.status_code == 303, done.text
            assert still_signed_in(client)
            return client

        yield signed_in


def still_signed_in(client: httpx.Client) -> bool:
    page = client.get(f"{CONSOLE}/keys")
    if page.status_code == 303:
        assert page.headers["location"].startswith(f"{CONSOLE}/login")
        return False
    assert page.status_code == 200, page.text
    return True


def sessions(api: Service, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    answer = api.client.get("/sessions", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def emails(listed: list[dict[str, Any]]) -> list[str | None]:
    return sorted(session["user_email"] for session in listed)


def test_an_admin_lists_every_session_and_ends_one(
    api: Service, browsers: Callable[[str], httpx.Client]
) -> None:
    api.user("ann@example.com")
    api.user("bob@example.com")
    ann = browsers("ann@example.com")
    bob = browsers("bob@example.com")

    listed = sessions(api, api.admin)
    assert emails(listed) == ["ann@example.com", "bob@example.com"]
    assert all("digest" not in session for session in listed)
    only_bob = sessions(api, api.admin, user="bob@example.com")
    assert emails(only_bob) == ["bob@example.com"]

    ended = api.client.delete(f"/sessions/{only_bob[0]['id']}", headers=api.admin)
    assert ended.status_code == 200, ended.text
    assert ended.json()["revoked_at"] is not None
    assert not still_signed_in(bob)
    assert still_signed_in(ann)
    assert emails(sessions(api, api.admin)) == ["ann@example.com"]
    [event] = api.audit(action="session.revoke", target=only_bob[0]["id"])
    assert event["outcome"] == "success"

    again = api.client.delete(f"/sessions/{only_bob[0]['id']}", headers=api.admin)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "conflict"


def test_a_member_sees_and_ends_only_their_own(
    api: Service, browsers: Callable[[str], httpx.Client]
) -> None:
    api.user("carol@example.com")
    api.user("dave@example.com")
    carol_browser = browsers("carol@example.com")
    dave_browser = browsers("dave@example.com")
    carol = api.token_of("carol@example.com")

    mine = sessions(api, carol)
    assert emails(mine) == ["carol@example.com"]
    # Naming someone else, or anyone at all, is for users:manage holders.
    named = api.client.get("/sessions", headers=carol, params={"user": "dave@example.com"})
    assert named.status_code == 403, named.text

    [daves] = sessions(api, api.admin, user="dave@example.com")
    refused = api.client.delete(f"/sessions/{daves['id']}", headers=carol)
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "not_found"
    assert still_signed_in(dave_browser)
    [denied] = api.audit(action="session.revoke", target=daves["id"])
    assert denied["outcome"] == "denied"

    ended = api.client.delete(f"/sessions/{mine[0]['id']}", headers=carol)
    assert ended.status_code == 200, ended.text
    assert not still_signed_in(carol_browser)


def test_a_user_manager_reaches_no_higher_than_their_role(
    api: Service, browsers: Callable[[str], httpx.Client]
) -> None:
    api.user("erin@example.com", role="manager")
    api.user("frank@example.com")
    api.user("grace@example.com", role="admin")
    browsers("frank@example.com")
    grace_browser = browsers("grace@example.com")
    # Acting on a user needs a credential that could grant them everything (roles.py).
    erin = api.token_of("erin@example.com", scopes=["read", "write", "users:manage"])

    assert emails(sessions(api, erin)) == ["frank@example.com"]
    assert sessions(api, erin, user="grace@example.com") == []

    [graces] = sessions(api, api.admin, user="grace@example.com")
    refused = api.client.delete(f"/sessions/{graces['id']}", headers=erin)
    assert refused.status_code == 404, refused.text
    assert still_signed_in(grace_browser)

    [franks] = sessions(api, erin, user="frank@example.com")
    assert api.client.delete(f"/sessions/{franks['id']}", headers=erin).status_code == 200


def test_a_credential_with_no_user_sees_no_session(
    api: Service, browsers: Callable[[str], httpx.Client]
) -> None:
    api.user("heidi@example.com")
    browsers("heidi@example.com")
    made = api.client.post("/tokens", headers=api.admin, json={"name": "robot"})
    assert made.status_code == 201, made.text
    robot = {"X-API-Key": made.json()["token"]}
    assert sessions(api, robot) == []
    [heidis] = sessions(api, api.admin)
    assert api.client.delete(f"/sessions/{heidis['id']}", headers=robot).status_code == 404


def test_no_credential_is_a_401(api: Service) -> None:
    assert api.client.get("/sessions").status_code == 401
    assert api.client.delete("/sessions/ses_0000000000000000").status_code == 401


@pytest.mark.parametrize(
    "session_id",
    ["ses_0000000000000000", "ses_%2e%2e", "%00", "x" * 65, "ses_a%2Fb", "ses_a%20b"],
)
def test_ids_that_name_no_session_are_4xx(api: Service, session_id: str) -> None:
    answer = api.client.delete(f"/sessions/{session_id}", headers=api.admin)
    assert answer.status_code in (404, 422), answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["code"] in ("not_found", "invalid_request")
