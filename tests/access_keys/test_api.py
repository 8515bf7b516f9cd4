"""``/authgate/v1/access-keys`` on a live server: admins only, strict bodies, 404s,
every change audited, and the secret in the creation answer only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from authgate.client import AuthgateClient
from authgate.credentials.bootstrap import read_admin_key
from authgate.errors import InvalidRequest
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.store.records import UserRecord
from tests.access_keys.conftest import ADMIN, verifies
from tests.support import live_server


@dataclass
class Api:
    runtime: Runtime
    client: httpx.Client
    admin: dict[str, str]

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/access-keys", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture
def api(open_runtime: Callable[..., Runtime]) -> Iterator[Api]:
    runtime = open_runtime(start=True)
    assert runtime.admin_key is not None
    admin = {"X-API-Key": read_admin_key(runtime.admin_key.path)}
    with (
        live_server(create_app(runtime, manage_runtime=False)) as base_url,
        httpx.Client(base_url=base_url + "/authgate/v1", timeout=30) as client,
    ):
        yield Api(runtime, client, admin)


def member_headers(runtime: Runtime) -> dict[str, str]:
    now = datetime.now(UTC)
    user = UserRecord(
        id="usr_member000000001",
        email="member@example.com",
        role="member",
        active=True,
        created_at=now,
        updated_at=now,
    )
    runtime.store.insert_user(user, "member@example.com")
    created = runtime.keys.create(ADMIN, name="member-key", scopes=["read"], owner_id=user.id)
    return {"X-API-Key": created.token}


def scoped_headers(runtime: Runtime) -> dict[str, str]:
    created = runtime.keys.create(ADMIN, name="service", scopes=["read", "write"])
    return {"X-API-Key": created.token}


def test_create_answers_the_secret_once(api: Api) -> None:
    created = api.create(name="backup", grants={"photos": "read", "backups": "write"})
    assert set(created) >= {"id", "access_key_id", "secret_access_key", "name", "grants"}
    assert created["grants"] == {"backups": "write", "photos": "read"}
    assert created["active"] is True and created["revoked"] is False
    assert verifies(api.runtime, created["access_key_id"], created["secret_access_key"])
    secret = created["secret_access_key"]

    listed = api.client.get("/access-keys", headers=api.admin)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [created["id"]]
    for ident in (created["id"], created["access_key_id"]):
        one = api.client.get(f"/access-keys/{ident}", headers=api.admin)
        assert one.status_code == 200
        assert one.json()["access_key_id"] == created["access_key_id"]
        assert secret not in one.text
        assert "secret" not in one.text
    assert secret not in listed.text


def test_grants_and_revocation(api: Api) -> None:
    created = api.create(name="k")
    path = f"/access-keys/{created['access_key_id']}"
    granted = api.client.put(
        f"{path}/grants/photos", json={"permission": "write"}, headers=api.admin
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["grants"] == {"photos": "write"}
    changed = api.client.put(
        f"{path}/grants/photos", json={"permission": "admin"}, headers=api.admin
    )
    assert changed.json()["grants"] == {"photos": "admin"}
    taken = api.client.delete(f"{path}/grants/photos", headers=api.admin)
    assert taken.status_code == 200
    assert taken.json()["grants"] == {}
    again = api.client.delete(f"{path}/grants/photos", headers=api.admin)
    assert again.status_code == 404
    assert again.json()["code"] == "not_found"

    revoked = api.client.delete(path, headers=api.admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked"] is True and revoked.json()["active"] is False
    twice = api.client.delete(path, headers=api.admin)
    assert twice.status_code == 409
    assert "already revoked" in twice.json()["detail"]
    late = api.client.put(f"{path}/grants/photos", json={"permission": "read"}, headers=api.admin)
    assert late.status_code == 409


def test_every_change_is_audited_with_the_caller_and_address(api: Api) -> None:
    created = api.create(name="audited", grants={"photos": "read"})
    path = f"/access-keys/{created['id']}"
    api.client.put(f"{path}/grants/logs", json={"permission": "read"}, headers=api.admin)
    api.client.delete(f"{path}/grants/logs", headers=api.admin)
    api.client.delete(path, headers=api.admin)
    events = api.runtime.store.list_audit(target=created["id"])
    assert [event.action for event in reversed(events)] == [
        "access_key.create",
        "access_key.grant",
        "access_key.revoke_grant",
        "access_key.revoke",
    ]
    for event in events:
        assert event.actor == "admin"
        assert event.source == "127.0.0.1"
        assert created["secret_access_key"] not in repr(event)


@pytest.mark.parametrize("who", ["member", "scoped", "nobody"])
def test_only_admins(api: Api, who: str) -> None:
    created = api.create(name="existing")
    headers: dict[str, str] = {}
    if who == "member":
        headers = member_headers(api.runtime)
    elif who == "scoped":
        headers = scoped_headers(api.runtime)
    status = 401 if who == "nobody" else 403
    path = f"/access-keys/{created['id']}"
    attempts = [
        api.client.post("/access-keys", json={"name": "sneaky"}, headers=headers),
        api.client.get("/access-keys", headers=headers),
        api.client.get(path, headers=headers),
        api.client.delete(path, headers=headers),
        api.client.put(f"{path}/grants/photos", json={"permission": "admin"}, headers=headers),
        api.client.delete(f"{path}/grants/photos", headers=headers),
    ]
    for response in attempts:
        assert response.status_code == status, (response.request.method, response.text)
        assert created["access_key_id"] not in response.text
    assert [r.name for r in api.runtime.access_keys.list()] == ["existing"]
    assert api.runtime.access_keys.get(created["id"]).revoked_at is None


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "extra": 1},
        {"name": "k", "grants": {"photos": "owner"}},
        {"name": "k", "grants": [["photos", "read"]]},
        {"name": 5},
        {"name": "has space"},
        {"grants": {}},
        {"name": "k", "secret_access_key": "mine"},
    ],
)
def test_strict_create_bodies(api: Api, body: dict[str, Any]) -> None:
    response = api.client.post("/access-keys", json=body, headers=api.admin)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert api.runtime.access_keys.list() == []


def test_bad_bucket_names_and_grant_bodies(api: Api) -> None:
    bad_bucket = api.client.post(
        "/access-keys", json={"name": "k", "grants": {"Bad_Bucket": "read"}}, headers=api.admin
    )
    assert bad_bucket.status_code == 422
    assert bad_bucket.json()["code"] == "invalid_request"
    assert "bucket name 'Bad_Bucket' is not valid" in bad_bucket.json()["detail"]

    created = api.create(name="k")
    path = f"/access-keys/{created['id']}/grants"
    for bucket, body in [
        ("UPPER", {"permission": "read"}),
        ("photos", {"permission": "everything"}),
        ("photos", {"permission": "read", "extra": True}),
        ("photos", {}),
        ("photos", {"permission": 1}),
    ]:
        response = api.client.put(f"{path}/{bucket}", json=body, headers=api.admin)
        assert response.status_code == 422, (bucket, body, response.text)
        assert response.json()["code"] == "invalid_request"
    assert api.runtime.access_keys.get(created["id"]).grants == {}


def test_unknown_ids_are_404(api: Api) -> None:
    for method, path, body in [
        ("GET", "/access-keys/AKAGAAAAAAAAAAAAAAAA", None),
        ("DELETE", "/access-keys/ak_missing", None),
        ("PUT", "/access-keys/AKAGAAAAAAAAAAAAAAAA/grants/photos", {"permission": "read"}),
        ("DELETE", "/access-keys/AKAGAAAAAAAAAAAAAAAA/grants/photos", None),
    ]:
        response = api.client.request(method, path, json=body, headers=api.admin)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "not_found"
        assert "no access key with id" in response.json()["detail"]


def test_the_openapi_document_describes_every_route(api: Api) -> None:
    base = str(api.client.base_url).rstrip("/").removesuffix("/v1")
    document = httpx.get(f"{base}/openapi.json").json()
    expected = {
        ("post", "/access-keys"): {"201", "401", "403", "422"},
        ("get", "/access-keys"): {"200", "401", "403"},
        ("get", "/access-keys/{ident}"): {"200", "401", "403", "404", "422"},
        ("delete", "/access-keys/{ident}"): {"200", "401", "403", "404", "409", "422"},
        ("put", "/access-keys/{ident}/grants/{bucket}"): {"200", "401", "403", "404", "409"},
        ("delete", "/access-keys/{ident}/grants/{bucket}"): {"200", "401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        operation = document["paths"][f"/authgate/v1{path}"][method]
        assert statuses | {"500", "503"} <= set(operation["responses"]), (method, path)
        for status, entry in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert entry["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    for name in ("AccessKeyCreate", "GrantSet"):
        assert schemas[name]["additionalProperties"] is False
    assert "secret_access_key" in schemas["AccessKeyCreated"]["properties"]
    assert "secret_access_key" not in schemas["AccessKeyOut"]["properties"]


_BAD_PATTERNS = ["backup-?", "backup-[0-9]", "Backup-*", "backup-**", "xn--*"]


def test_patterns_in_bodies_and_paths(api: Api) -> None:
    http, admin = api.client, api.admin
    ident = api.create(name="j", grants={"backup-*": "write"})["id"]
    # "*" as a path segment, percent-encoded or not.
    for segment in ("%2A", "*"):
        put = http.put(
            f"/access-keys/{ident}/grants/{segment}", json={"permission": "read"}, headers=admin
        )
        assert put.status_code == 200, put.text
        assert put.json()["grants"] == {"*": "read", "backup-*": "write"}
    gone = http.delete(f"/access-keys/{ident}/grants/%2A", headers=admin)
    assert gone.status_code == 200 and gone.json()["grants"] == {"backup-*": "write"}
    for pattern in _BAD_PATTERNS:
        body = {"name": "bad", "grants": {pattern: "read"}}
        refused = http.post("/access-keys", json=body, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_request"
        assert f"{pattern!r} is not valid" in refused.json()["detail"]
        put = http.put(
            f"/access-keys/{ident}/grants/{pattern}", json={"permission": "read"}, headers=admin
        )
        assert put.status_code == 422, put.text
    assert api.runtime.access_keys.get(ident).grants == {"backup-*": "write"}
    assert [k["name"] for k in http.get("/access-keys", headers=admin).json()] == ["j"]


def test_python_client_sets_and_deletes_pattern_grants(api: Api) -> None:
    base = str(api.client.base_url).removesuffix("/authgate/v1/").removesuffix("/authgate/v1")
    with AuthgateClient(base, token=api.admin["X-API-Key"]) as client:
        ident = client.create_access_key("c", grants={"*": "read"})["id"]
        assert client.set_grant(ident, "backup-*", "write")["grants"] == {
            "*": "read",
            "backup-*": "write",
        }
        assert client.delete_grant(ident, "*")["grants"] == {"backup-*": "write"}
        with pytest.raises(InvalidRequest) as raised:
            client.set_grant(ident, "backup-[0-9]", "read")
        assert "'backup-[0-9]' is not valid" in raised.value.detail
