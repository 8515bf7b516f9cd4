"""``GET`` / ``PATCH /authgate/v1/settings`` against a real ``authgate serve``: secrets
never come back, the redacted marker never wipes one, every refusal leaves the store's
settings table as it was, every change is audited, and what was saved is what the next
start runs with, under the environment."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.manage.stored_settings import EDITABLE, REDACTED
from tests.console.attack import USER_PASSWORD, Served, serve

SECRET_PASSWORD = "s3cret-redis-pass"
SECRET_URL = f"redis://:{SECRET_PASSWORD}@127.0.0.1:6379/0"
OTHER_SECRET_URL = "redis://:another-redis-pass@127.0.0.1:6379/1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # token_days_min is pinned by the environment: shown, never editable here.
    with serve(tmp_path_factory.mktemp("settings-api"), AUTHGATE_TOKEN_DAYS_MIN="1") as running:
        yield running


def stored(served: Served) -> dict[str, Any]:
    return {row["name"]: row["value"] for row in served.rows("settings")}


def by_name(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return {item["name"]: item for item in answer.json()}


def patch(served: Served, body: Any, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return served.api("PATCH", "/settings", content=body,
                          headers={"Content-Type": "application/json", **headers})  # fmt: skip
    return served.api("PATCH", "/settings", json=body, headers=headers)


def settings_events(served: Served) -> list[dict[str, Any]]:
    return [row for row in served.rows("audit_events") if row["action"] == "settings.update"]


def test_admin_sees_every_editable_setting_with_its_source(served: Served) -> None:
    shown = served.api("GET", "/settings")
    assert [item["name"] for item in shown.json()] == list(EDITABLE)
    items = by_name(shown)
    assert items["token_days_min"]["source"] == "environment"
    assert items["token_days_min"]["editable"] is False
    assert items["redis_url"]["secret"] is True
    for name in EDITABLE:
        assert items[name]["source"] in {"environment", "default", "saved"}
        assert items[name]["description"], name


def test_a_secret_never_comes_back_and_the_marker_keeps_it(served: Served) -> None:
    saved = patch(served, {"redis_url": SECRET_URL})
    assert SECRET_PASSWORD not in saved.text
    assert by_name(saved)["redis_url"]["saved"] == REDACTED
    assert by_name(saved)["redis_url"]["source"] == "saved"
    shown = served.api("GET", "/settings")
    assert SECRET_PASSWORD not in shown.text
    assert by_name(shown)["redis_url"]["saved"] == REDACTED
    assert stored(served)["redis_url"] == SECRET_URL

    # A client that sends back what it read keeps the secret (no redaction wipe).
    kept = patch(served, {"redis_url": REDACTED, "token_days_max": 40})
    assert SECRET_PASSWORD not in kept.text
    assert stored(served) == {"redis_url": SECRET_URL, "token_days_max": 40}

    # A field left out is untouched.
    other = patch(served, {"token_days_default": 7})
    assert stored(served) == {"redis_url": SECRET_URL, "token_days_max": 40,
                              "token_days_default": 7}  # fmt: skip
    assert by_name(other)["token_days_max"]["saved"] == 40

    # A new secret replaces it; null clears it back to the default.
    patch(served, {"redis_url": OTHER_SECRET_URL})
    assert stored(served)["redis_url"] == OTHER_SECRET_URL
    cleared = patch(served, {"redis_url": None, "token_days_max": None, "token_days_default": ""})
    assert by_name(cleared)["redis_url"]["saved"] is None
    assert by_name(cleared)["redis_url"]["source"] == "default"
    assert stored(served) == {}


def test_every_change_is_audited_and_secrets_only_as_changed(served: Served) -> None:
    before = len(settings_events(served))
    patch(served, {"redis_url": SECRET_URL, "key_rate_limit": "100/minute"})
    patch(served, {"redis_url": REDACTED, "key_rate_limit": "100/minute"})  # no change
    patch(served, {"redis_url": None, "key_rate_limit": None})
    events = settings_events(served)[before:]
    assert len(events) == 2, events
    first, second = (event["detail"]["changes"] for event in events)
    assert first["redis_url"]["changed"] is True
    assert set(first["redis_url"]) <= {"changed", "cleared"}
    assert first["key_rate_limit"] == {"old": None, "new": "100/minute"}
    assert second["key_rate_limit"] == {"old": "100/minute", "new": None}
    assert second["redis_url"]["changed"] is True
    everything = json.dumps([row["detail"] for row in served.rows("audit_events")], default=str)
    assert SECRET_PASSWORD not in everything
    assert all(event["outcome"] == "success" for event in events)


def _refused(served: Served, body: Any, status: int, *words: str) -> dict[str, Any]:
    before_settings, before_events = stored(served), len(settings_events(served))
    answer = patch(served, body)
    assert answer.status_code == status, answer.text
    for word in words:
        assert word in answer.json()["detail"], answer.text
    assert stored(served) == before_settings
    assert len(settings_events(served)) == before_events
    data: dict[str, Any] = answer.json()
    return data


def test_an_unknown_setting_is_422_with_a_suggestion(served: Served) -> None:
    _refused(served, {"token_day_max": 5}, 422, "token_day_max", "token_days_max")
    # One bad name spoils the whole change: nothing else in it is saved.
    _refused(served, {"token_days_max": 5, "http_prefix": "/x"}, 422, "http_prefix")
    _refused(served, {"database_url": "sqlite:///x"}, 422, "database_url")


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"token_days_max": 0}, "token_days_max"),
        ({"token_days_max": "many"}, "token_days_max"),
        ({"token_days_max": [5]}, "token_days_max"),
        ({"login_rate_limit": "a lot"}, "login_rate_limit"),
        ({"token_days_default": {"days": 3}}, "token_days_default"),
    ],
)
def test_a_value_that_fails_validation_is_422_naming_it(
    served: Served, body: dict[str, Any], name: str
) -> None:
    _refused(served, body, 422, name)


def test_a_setting_pinned_by_the_environment_is_409(served: Served) -> None:
    _refused(served, {"token_days_min": 2}, 409, "token_days_min", "environment")
    _refused(served, {"token_days_min": None}, 409, "token_days_min")


def test_bodies_that_are_no_json_object_are_refused(served: Served) -> None:
    before = stored(served)
    as_text = served.api("PATCH", "/settings", content=b'{"token_days_max": 5}',
                         headers={"Content-Type": "text/plain"})  # fmt: skip
    assert as_text.status_code in {415, 422}, as_text.text
    as_form = served.api("PATCH", "/settings", data={"token_days_max": "5"})
    assert as_form.status_code in {415, 422}, as_form.text
    assert patch(served, b"[]").status_code == 422
    assert patch(served, b'[{"token_days_max": 5}]').status_code == 422
    assert patch(served, b'"token_days_max"').status_code == 422
    assert patch(served, b"not json").status_code == 400
    duplicate = patch(served, b'{"token_days_max": 5, "token_days_max": 6}')
    assert duplicate.status_code == 400, duplicate.text
    assert patch(served, b'{"token_days_max": NaN}').status_code == 400
    assert patch(served, b'{"token_days_max": 5' + b" " * 20_000 + b"}").status_code == 413
    assert stored(served) == before


def test_only_admins_read_or_change_settings(served: Served) -> None:
    email = "settings-member@example.com"
    served.add_user(email)
    token = httpx.post(
        f"{served.url}/authgate/v1/tokens",
        json={"email": email, "password": USER_PASSWORD, "name": "laptop"},
        timeout=30,
    )
    assert token.status_code == 201, token.text
    member = {"X-API-Key": token.json()["token"]}
    before = stored(served)
    url = f"{served.url}/authgate/v1/settings"
    assert httpx.get(url, headers=member).status_code == 403
    assert httpx.patch(url, headers=member, json={"token_days_max": 5}).status_code == 403
    assert httpx.get(url).status_code == 401
    assert httpx.patch(url, json={"token_days_max": 5}).status_code == 401
    assert stored(served) == before


# -- what the next start runs with ---------------------------------------------------------


def _token(served: Served, email: str, days: int) -> httpx.Response:
    return httpx.post(
        f"{served.url}/authgate/v1/tokens",
        json={
            "email": email,
            "password": USER_PASSWORD,
            "name": f"cli-{secrets.token_hex(4)}",
            "expires_in_days": days,
        },
        timeout=30,
    )


def test_a_saved_value_is_what_the_next_start_runs_with(tmp_path: Path) -> None:
    email = "precedence@example.com"
    with serve(tmp_path) as first:
        first.add_user(email)
        saved = patch(first, {"token_days_max": 3, "token_days_default": 3})
        assert by_name(saved)["token_days_max"]["pending"] is True
        assert _token(first, email, 10).status_code == 201  # saved, not yet applied
    with serve(tmp_path) as second:
        shown = by_name(second.api("GET", "/settings"))["token_days_max"]
        assert (shown["value"], shown["saved"], shown["source"]) == (3, 3, "saved")
        # A saved value is still the console's to change after a restart.
        assert shown["editable"] is True
        assert shown["pending"] is False
        assert _token(second, email, 10).status_code == 422
        assert _token(second, email, 3).status_code == 201
        assert patch(second, {"token_days_max": 5}).status_code == 200
    with serve(tmp_path, AUTHGATE_TOKEN_DAYS_MAX="20") as third:
        shown = by_name(third.api("GET", "/settings"))["token_days_max"]
        assert (shown["value"], shown["source"], shown["editable"]) == (20, "environment", False)
        assert _token(third, email, 10).status_code == 201
        assert stored(third)["token_days_max"] == 5
