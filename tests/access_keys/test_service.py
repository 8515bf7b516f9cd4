"""The access key service: id and secret shapes, bucket rules, audit, and the verifier's
look-up (cached, invalidated by the change feed within a second)."""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable
from typing import Any

import pytest

from authgate.errors import Conflict, InvalidRequest, NotFound
from authgate.manage.access_keys import (
    SECRET_ALPHABET,
    access_key_dict,
    parse_grant,
    validate_bucket,
)
from authgate.runtime import Runtime
from authgate.s3.grants import grant_allows, required_grant
from authgate.sigv4 import AuthorizationHeaderMalformed, InvalidAccessKeyId
from tests.access_keys.conftest import ADMIN, signed_get, verifies
from tests.support import wait_until

ID_RE = re.compile(r"AKAG[A-Z2-7]{16}")


def test_ids_and_secrets_have_aws_shapes(open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime()
    made = [runtime.access_keys.create(ADMIN, name=f"k{i}") for i in range(20)]
    ids = {item.record.access_key_id for item in made}
    secrets = {item.secret for item in made}
    assert len(ids) == len(secrets) == 20
    for item in made:
        assert ID_RE.fullmatch(item.record.access_key_id)
        assert len(item.record.access_key_id) == 20
        assert item.record.access_key_id.isupper()
        assert len(item.secret) == 40
        assert set(item.secret) <= set(SECRET_ALPHABET)
        assert item.record.id.startswith("ak_")
    assert set(SECRET_ALPHABET) == set(string.ascii_letters + string.digits + "+/")


def test_create_is_audited_without_the_secret_and_listings_never_show_it(
    open_runtime: Callable[..., Runtime],
) -> None:
    runtime = open_runtime()
    created = runtime.access_keys.create(
        ADMIN, name="backup", grants={"photos": "read", "backups": "write"}
    )
    shown = created.as_dict()
    assert shown["access_key_id"] == created.record.access_key_id
    assert shown["secret_access_key"] == created.secret
    assert shown["grants"] == {"backups": "write", "photos": "read"}

    listed = [access_key_dict(r) for r in runtime.access_keys.list()]
    assert [item["id"] for item in listed] == [created.record.id]
    for view in (listed[0], access_key_dict(runtime.access_keys.get(created.record.access_key_id))):
        assert "secret_access_key" not in view
        assert created.secret not in repr(view)
        assert created.record.secret_encrypted not in repr(view)
    assert created.secret not in repr(created.record)

    (event,) = runtime.store.list_audit(action="access_key.create")
    assert (event.actor, event.target, event.source) == ("tester", created.record.id, "test")
    assert event.detail["access_key_id"] == created.record.access_key_id
    assert event.detail["grants"] == {"backups": "write", "photos": "read"}
    assert created.secret not in repr(event)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "2 characters long"),
        ("a" * 64, "64 characters long"),
        ("Photos", "characters other than"),
        ("my_bucket", "characters other than"),
        ("-photos", "start and end"),
        ("photos.", "start and end"),
        ("my..bucket", "two adjacent periods"),
        ("192.168.1.1", "IP address"),
        ("xn--photos", "reserves"),
        ("photos-s3alias", "reserves"),
    ],
)
def test_bucket_names_follow_s3_rules(name: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(reason)) as caught:
        validate_bucket(name)
    assert repr(name) in caught.value.detail


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-2", "123", "photos.example.com"])
def test_valid_bucket_names(name: str) -> None:
    assert validate_bucket(name) == name


def test_parse_grant() -> None:
    assert parse_grant("photos=read") == ("photos", "read")
    assert parse_grant(" photos = admin ") == ("photos", "admin")
    for bad, message in [
        ("photos", "BUCKET=read|write|admin"),
        ("photos=all", "permission 'all' is not valid"),
        ("Photos=read", "bucket name 'Photos'"),
    ]:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            parse_grant(bad)


def test_bad_input_to_the_service(open_runtime: Callable[..., Runtime]) -> None:
    service = open_runtime().access_keys
    with pytest.raises(InvalidRequest, match="name must be"):
        service.create(ADMIN, name="no spaces")
    with pytest.raises(InvalidRequest, match="granted twice"):
        service.create(ADMIN, name="k", grants=[("photos", "read"), ("photos", "write")])
    with pytest.raises(InvalidRequest, match="bucket name"):
        service.create(ADMIN, name="k", grants={"UPPER": "read"})
    created = service.create(ADMIN, name="k")
    ident = created.record.access_key_id
    with pytest.raises(InvalidRequest, match="permission"):
        service.grant(ADMIN, ident, "photos", "owner")
    with pytest.raises(NotFound, match="no access key with id 'AKAGAAAAAAAAAAAAAAAA'"):
        service.grant(ADMIN, "AKAGAAAAAAAAAAAAAAAA", "photos", "read")
    with pytest.raises(NotFound, match="no grant on bucket 'photos'"):
        service.revoke_grant(ADMIN, ident, "photos")
    service.revoke(ADMIN, ident)
    with pytest.raises(Conflict, match="already revoked"):
        service.revoke(ADMIN, ident)
    with pytest.raises(Conflict, match="is revoked"):
        service.grant(ADMIN, ident, "photos", "read")


def test_grants_and_their_audit(open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime()
    service = runtime.access_keys
    created = service.create(ADMIN, name="k", grants={"photos": "read"})
    key_id = created.record.id
    assert service.grant(ADMIN, key_id, "photos", "write").grants == {"photos": "write"}
    assert service.grant(ADMIN, created.record.access_key_id, "logs", "admin").grants == {
        "photos": "write",
        "logs": "admin",
    }
    assert service.revoke_grant(ADMIN, key_id, "photos").grants == {"logs": "admin"}
    grants = runtime.store.list_audit(action="access_key.grant")
    assert [(e.detail["bucket"], e.detail["permission"], e.detail["previous"]) for e in grants] == [
        ("logs", "admin", None),
        ("photos", "write", "read"),
    ]
    (taken,) = runtime.store.list_audit(action="access_key.revoke_grant")
    assert (taken.target, taken.detail["bucket"], taken.detail["previous"]) == (
        key_id,
        "photos",
        "write",
    )
    service.revoke(ADMIN, key_id)
    (revoked,) = runtime.store.list_audit(action="access_key.revoke")
    assert revoked.target == key_id


def test_the_hot_path_neither_reads_the_store_nor_decrypts(
    open_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(start=True)
    created = runtime.access_keys.create(ADMIN, name="hot")
    access_key_id = created.record.access_key_id
    assert verifies(runtime, access_key_id, created.secret)

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the hot path touched the store or the master key")

    monkeypatch.setattr(runtime.store, "get_access_key", forbidden)
    monkeypatch.setattr(runtime.master_key, "decrypt", forbidden)
    for _ in range(3):
        assert verifies(runtime, access_key_id, created.secret).access_key.name == "hot"
    # Ids that cannot be ours are refused without a look at the store.
    with pytest.raises(InvalidAccessKeyId):
        runtime.sigv4.verify(signed_get("AKIAIOSFODNN7EXAMPLE", "x" * 40))


def test_unknown_ids_are_remembered_briefly_and_a_new_key_works_at_once(
    open_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(start=True)
    service = runtime.access_keys
    calls: list[str] = []
    real_get = runtime.store.get_access_key

    def counting(ident: str) -> Any:
        calls.append(ident)
        return real_get(ident)

    monkeypatch.setattr(runtime.store, "get_access_key", counting)
    unknown = "AKAGAAAAAAAAAAAAAAAA"
    assert service.secret_lookup(unknown) is None
    assert service.secret_lookup(unknown) is None
    assert calls == [unknown]

    # An id looked up (and missed) just before it was created is usable at once.
    monkeypatch.setattr("authgate.manage.access_keys.generate_access_key_id", lambda: unknown)
    created = service.create(ADMIN, name="fresh")
    assert created.record.access_key_id == unknown
    assert verifies(runtime, unknown, created.secret)


def test_a_lookup_racing_a_change_does_not_cache_the_stale_answer(
    open_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(start=True)
    created = runtime.access_keys.create(ADMIN, name="racy")
    real_get = runtime.store.get_access_key

    def read_then_change(ident: str) -> Any:
        record = real_get(ident)  # read while the key is still live...
        runtime.forget_key(created.record.id)  # ...and the change feed fires meanwhile
        return record

    monkeypatch.setattr(runtime.store, "get_access_key", read_then_change)
    runtime.access_keys.secret_lookup(created.record.access_key_id)
    assert len(runtime.access_keys.cache) == 0


def test_a_revoked_key_is_never_decrypted(
    open_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(start=True)
    created = runtime.access_keys.create(ADMIN, name="gone")
    runtime.access_keys.revoke(ADMIN, created.record.id)

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("decrypted a revoked key")

    monkeypatch.setattr(runtime.master_key, "decrypt", forbidden)
    found = runtime.access_keys.secret_lookup(created.record.access_key_id)
    assert found is not None and found.active is False and found.secret == ""
    with pytest.raises(InvalidAccessKeyId):
        verifies(runtime, created.record.access_key_id, created.secret)


def test_a_revoked_key_is_refused_by_a_running_server_within_a_second(
    open_runtime: Callable[..., Runtime],
) -> None:
    server = open_runtime(start=True)
    cli = open_runtime()  # another process on the same store: the CLI, another instance
    created = cli.access_keys.create(ADMIN, name="doomed", grants={"bucket": "read"})
    access_key_id = created.record.access_key_id
    facts = signed_get(access_key_id, created.secret)
    assert server.sigv4.verify(facts).access_key.active  # now cached by the server

    def refused() -> bool:
        try:
            server.sigv4.verify(facts)
        except InvalidAccessKeyId:
            return True
        return False

    cli.access_keys.revoke(ADMIN, access_key_id)
    started = time.monotonic()
    assert wait_until(refused, timeout=1.0, interval=0.01)
    assert time.monotonic() - started < 1.0


def test_grant_changes_take_effect_on_a_running_server(
    open_runtime: Callable[..., Runtime],
) -> None:
    server = open_runtime(start=True)
    cli = open_runtime()
    created = cli.access_keys.create(ADMIN, name="growing", grants={"bucket": "read"})
    facts = signed_get(created.record.access_key_id, created.secret, "/bucket/key.txt")

    def allowed(method: str) -> bool:
        grants = server.sigv4.verify(facts).access_key.grants
        bucket, needed = required_grant(method, "/bucket/key.txt", None, ())
        assert bucket == "bucket"
        return grant_allows(grants.get(bucket, ""), needed)

    assert allowed("GET") and not allowed("PUT")
    cli.access_keys.grant(ADMIN, created.record.id, "bucket", "write")
    assert wait_until(lambda: allowed("PUT"), timeout=1.0, interval=0.01)
    cli.access_keys.revoke_grant(ADMIN, created.record.id, "bucket")
    assert wait_until(lambda: not allowed("GET"), timeout=1.0, interval=0.01)
    assert server.sigv4.verify(facts).access_key.grants == {}


def test_revocation_in_the_same_process_is_immediate(
    open_runtime: Callable[..., Runtime],
) -> None:
    runtime = open_runtime(start=True)
    created = runtime.access_keys.create(ADMIN, name="local")
    assert verifies(runtime, created.record.access_key_id, created.secret)
    runtime.access_keys.revoke(ADMIN, created.record.access_key_id)
    with pytest.raises(InvalidAccessKeyId):
        verifies(runtime, created.record.access_key_id, created.secret)


def test_sigv4_settings(open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime(sigv4_region="eu-west-1")
    created = runtime.access_keys.create(ADMIN, name="regional")
    ident, secret = created.record.access_key_id, created.secret
    assert runtime.sigv4.verify(signed_get(ident, secret, region="eu-west-1"))
    with pytest.raises(AuthorizationHeaderMalformed, match="expecting 'eu-west-1'"):
        runtime.sigv4.verify(signed_get(ident, secret, region="us-east-1"))
    anywhere = open_runtime(sigv4_region="*")
    assert anywhere.settings.sigv4_region is None
    assert anywhere.sigv4.verify(signed_get(ident, secret, region="ap-south-1"))
    default = open_runtime(s3_base_domains="s3.example.com, .Files.Test.", list_buckets="deny")
    assert default.settings.sigv4_region == "us-east-1"
    assert default.settings.s3_base_domains == ("s3.example.com", "files.test")
    assert default.settings.list_buckets == "deny"
    assert open_runtime().settings.list_buckets == "filter"
