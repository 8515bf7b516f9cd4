"""``POST /authgate/v1/leaks`` in GitHub's secret-scanning partner format, against a live
server on SQLite and PostgreSQL: signed alerts revoke at once; unsigned, badly signed,
tampered and ambiguous ones change nothing."""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.credentials.tokens import digest, generate_token
from authgate.manage.keys import Actor
from tests.api.github_alerts import (
    IDENTIFIER,
    SIGNATURE,
    SigningKey,
    alert_body,
    signed_headers,
    write_key_list,
)
from tests.api.service import Service


@pytest.fixture
def github() -> SigningKey:
    return SigningKey()


@pytest.fixture
def key_list(tmp_path: Path, github: SigningKey) -> Path:
    return write_key_list(tmp_path / "github-keys.json", github)


@pytest.fixture
def service(make_service: Callable[..., Service], key_list: Path) -> Service:
    return make_service(leak_alert_keys_file=key_list)


def _key(service: Service, name: str = "ci") -> tuple[str, str]:
    created = service.runtime.keys.create(Actor("test"), name=name)
    return created.token, created.record.id


def _works(service: Service, token: str) -> bool:
    response = service.client.get("/whoami", headers={"X-API-Key": token})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def _post(service: Service, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return service.client.post("/leaks", content=body, headers=headers)


def _revocations(service: Service, key_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in service.audit(limit=1000)
        if e["action"] == "key.revoke" and e["target"] == key_id
    ]


def test_a_signed_alert_revokes_the_key_and_answers_in_githubs_format(
    service: Service, github: SigningKey
) -> None:
    token, key_id = _key(service)
    assert _works(service, token)
    url = "https://github.com/octo/repo/blob/abc/.env"
    body = alert_body(token, url=url)

    response = _post(service, body, signed_headers(github, body))

    assert response.status_code == 200, response.text
    assert response.json() == [
        {"token_hash": digest(token), "token_type": "authgate_api_key", "label": "true_positive"}
    ]
    assert token not in response.text  # the secret is never echoed back
    assert not _works(service, token)
    [entry] = _revocations(service, key_id)
    assert entry["actor"] == "github-secret-scanning"
    assert entry["detail"]["reason"] == "leaked"
    assert entry["detail"]["url"] == url
    assert entry["detail"]["found_in"] == "content"


def test_tokens_that_are_not_ours_are_false_positives_and_touch_nothing(
    service: Service, github: SigningKey
) -> None:
    token, key_id = _key(service)
    never_issued = generate_token().token  # well formed, checksum right, in no store
    body = alert_body(never_issued, "ag_" + "x" * 46, "ghp_notours", token)

    response = _post(service, body, signed_headers(github, body))

    assert [entry["label"] for entry in response.json()] == [
        "false_positive",
        "false_positive",
        "false_positive",
        "true_positive",
    ]
    assert not _works(service, token)
    assert len(_revocations(service, key_id)) == 1


def test_a_replayed_alert_changes_nothing_more(service: Service, github: SigningKey) -> None:
    token, key_id = _key(service)
    body = alert_body(token)
    headers = signed_headers(github, body)
    first = _post(service, body, headers)
    before = service.counts()

    again = _post(service, body, headers)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert service.counts() == before
    assert len(_revocations(service, key_id)) == 1


def test_an_unsigned_alert_is_refused(service: Service) -> None:
    token, _ = _key(service)
    response = _post(service, alert_body(token), {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert _works(service, token)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body: body.replace(b"content", b"commit"), id="body-changed"),
        pytest.param(lambda body: body + b" ", id="trailing-space"),
        pytest.param(lambda body: json.dumps(json.loads(body), indent=1).encode(), id="re-encoded"),
    ],
)
def test_a_tampered_alert_is_refused(
    service: Service, github: SigningKey, tamper: Callable[[bytes], bytes]
) -> None:
    token, _ = _key(service)
    body = alert_body(token)
    headers = signed_headers(github, body)
    before = service.counts()

    response = _post(service, tamper(body), headers)

    assert response.status_code == 401, response.text
    assert _works(service, token)
    assert service.counts() == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            lambda key, body: {IDENTIFIER: "0" * 64, SIGNATURE: key.sign(body)}, id="unknown-id"
        ),
        pytest.param(
            lambda key, body: {IDENTIFIER: key.identifier, SIGNATURE: SigningKey().sign(body)},
            id="other-key",
        ),
        pytest.param(
            lambda key, body: {IDENTIFIER: key.identifier, SIGNATURE: "%%%not base64"}, id="garbage"
        ),
        pytest.param(lambda key, body: {IDENTIFIER: key.identifier, SIGNATURE: ""}, id="empty"),
        pytest.param(
            lambda key, body: {IDENTIFIER: key.identifier, SIGNATURE: "A" * 5000}, id="huge"
        ),
        pytest.param(lambda key, body: {IDENTIFIER: key.identifier}, id="identifier-only"),
        pytest.param(lambda key, body: {SIGNATURE: key.sign(body)}, id="signature-only"),
    ],
)
def test_a_badly_signed_alert_is_refused_without_an_error(
    service: Service, github: SigningKey, headers: Callable[[SigningKey, bytes], dict[str, str]]
) -> None:
    token, _ = _key(service)
    body = alert_body(token)
    response = _post(service, body, {"Content-Type": "application/json", **headers(github, body)})
    assert response.status_code in (401, 422), response.text
    assert _works(service, token)


def test_repeated_signature_headers_are_refused(service: Service, github: SigningKey) -> None:
    token, _ = _key(service)
    body = alert_body(token)
    good = signed_headers(github, body)
    headers = [
        ("Content-Type", "application/json"),
        (IDENTIFIER, good[IDENTIFIER]),
        (IDENTIFIER, "0" * 64),
        (SIGNATURE, good[SIGNATURE]),
    ]
    response = service.client.post("/leaks", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert _works(service, token)


def test_a_signature_and_a_credential_together_are_refused(
    service: Service, github: SigningKey
) -> None:
    token, _ = _key(service)
    body = alert_body(token)
    response = _post(service, body, {**signed_headers(github, body), **service.admin})
    assert response.status_code == 422
    assert _works(service, token)


def test_github_alerts_need_the_key_list(make_service: Callable[..., Service]) -> None:
    service = make_service()
    token, _ = _key(service)
    key = SigningKey()
    body = alert_body(token)
    response = _post(service, body, signed_headers(key, body))
    assert response.status_code == 404
    assert "leak_alert_keys_file" in response.json()["detail"]
    assert _works(service, token)


def test_a_rotated_github_key_is_picked_up_from_the_file(
    service: Service, github: SigningKey, key_list: Path
) -> None:
    token, _ = _key(service)
    successor = SigningKey()
    body = alert_body(token)
    assert _post(service, body, signed_headers(successor, body)).status_code == 401

    write_key_list(key_list, successor, github)

    assert _post(service, body, signed_headers(successor, body)).status_code == 200
    assert not _works(service, token)


def test_a_broken_key_list_keeps_the_keys_read_before(
    service: Service, github: SigningKey, key_list: Path
) -> None:
    key_list.write_text("{ not json")
    token, _ = _key(service)
    body = alert_body(token)
    assert _post(service, body, signed_headers(github, body)).status_code == 200
    assert not _works(service, token)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[", 400),
        (b'[{"token": "a", "token": "b"}]', 400),
        (b'{"token": "a"}', 422),
        (b"[]", 422),
        (b'[{"url": "x"}]', 422),
        (b'[{"token": 7}]', 422),
        (json.dumps([{"token": "t"}] * 1001).encode(), 422),
        (b"[" + b" " * (1 << 20) + b"]", 413),
    ],
)
def test_malformed_alerts_get_a_clear_4xx(
    service: Service, github: SigningKey, body: bytes, status: int
) -> None:
    before = service.counts()
    response = _post(service, body, signed_headers(github, body))
    assert response.status_code == status, response.text
    assert service.counts() == before


def test_the_admin_key_reported_leaked_raises_the_alarm(
    service: Service, github: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    body = alert_body(service.admin_key)
    with caplog.at_level(logging.CRITICAL, logger="authgate.leaks"):
        response = _post(service, body, signed_headers(github, body))

    assert response.json()[0]["label"] == "true_positive"
    assert any(
        "admin key" in r.getMessage() and r.levelno == logging.CRITICAL for r in caplog.records
    )
    assert service.admin_key not in caplog.text
    [entry] = [e for e in service.audit(limit=1000) if e["action"] == "key.leak_reported"]
    assert entry["target"] == "admin"
    assert "restart" in entry["detail"]["reason"]


# -- by hand ------------------------------------------------------------------------------
def test_an_admin_reports_a_leak_by_hand(service: Service) -> None:
    token, key_id = _key(service)
    body = alert_body(token, url="https://pastebin.example/abc")
    response = _post(service, body, {"Content-Type": "application/json", **service.admin})
    assert response.status_code == 200, response.text
    assert response.json()[0]["label"] == "true_positive"
    assert not _works(service, token)
    [entry] = _revocations(service, key_id)
    assert entry["actor"] == "admin"
    assert entry["detail"]["url"] == "https://pastebin.example/abc"


def test_a_member_cannot_report_leaks(service: Service) -> None:
    token, _ = _key(service)
    service.user("bob@example.com")
    response = _post(
        service,
        alert_body(token),
        {"Content-Type": "application/json", **service.token_of("bob@example.com")},
    )
    assert response.status_code == 403
    assert _works(service, token)


def test_the_pattern_to_register_matches_every_token_and_its_checksum_rule() -> None:
    """docs/tokens.md's pattern and checksum rule, as written, describe real tokens."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "tokens.md").read_text()
    pattern = re.search(r"pattern: `([^`]+)`", page)
    assert pattern is not None
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for _ in range(200):
        token = generate_token().token
        assert re.fullmatch(pattern.group(1), token)
        body = token.removeprefix("ag_")
        value, digits = zlib.crc32(body[:40].encode()), ""
        for _ in range(6):
            value, rest = divmod(value, 62)
            digits = alphabet[rest] + digits
        assert body[40:] == digits
