"""``authgate.jwks.JwksSource`` against a real HTTP server serving a key set: cache
headers and their bounds, background refresh, unknown ``kid`` refreshes, outages,
rotation, deadlines, and file sources re-read on change."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from joserfc.jwk import OctKey

from authgate.errors import KeysUnavailable
from authgate.jwks import MAX_JWKS_BYTES, JwksSource, cache_lifetime
from tests.jwt.issuer import TestIssuer, ec_key, jwks_document, rsa_key
from tests.support import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def source(
    issuer: TestIssuer,
    clock: FakeClock,
    *,
    timeout: float = 5.0,
    min_ttl: float = 60.0,
    unknown_kid_interval: float = 60.0,
) -> JwksSource:
    return JwksSource(
        issuer.url,
        clock=clock,
        timeout=timeout,
        min_ttl=min_ttl,
        unknown_kid_interval=unknown_kid_interval,
    )


def test_fetches_the_keys_and_finds_one_by_kid_and_algorithm(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    keys = source(issuer, clock)
    assert keys.needs_fetch()
    found = keys.key("rsa-1", "RS256")
    assert found is not None and found.kid == "rsa-1"
    assert keys.find("ec-1", "ES256") is not None
    # A key serves only its own family: never an EC key for RS256, never one for HS256.
    assert keys.find("ec-1", "RS256") is None
    assert keys.find("rsa-1", "HS256") is None
    assert keys.find("rsa-1", "none") is None
    assert issuer.fetches == 1
    assert keys.key("rsa-1", "RS256") is not None and issuer.fetches == 1


def test_a_token_without_kid_gets_only_a_lone_key_of_its_type(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    keys = source(issuer, clock)
    keys.refresh()
    assert keys.find(None, "ES256") is not None  # the one EC key
    issuer.rotate(rsa_key("rsa-2"))
    clock.now += 400
    keys.refresh()
    assert keys.find(None, "RS256") is None  # two RSA keys: the token must say which


def test_max_age_is_honoured_and_a_refresh_starts_in_the_background_before_expiry(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    issuer.cache_headers = {"Cache-Control": "public, max-age=400"}
    keys = source(issuer, clock)
    keys.refresh()
    clock.now += 250  # within three quarters of 400 s: from memory
    assert keys.find("rsa-1", "RS256") is not None
    assert issuer.fetches == 1 and not keys.needs_fetch()
    issuer.rotate(ec_key("ec-2"))
    clock.now += 60  # past 300 s, before 400 s: answered now, refreshed behind
    assert keys.find("rsa-1", "RS256") is not None
    assert wait_until(lambda: keys.find("ec-2", "ES256") is not None)
    assert issuer.fetches == 2


def test_past_expiry_the_keys_must_be_fetched_again(issuer: TestIssuer, clock: FakeClock) -> None:
    issuer.cache_headers = {"Cache-Control": "max-age=120"}
    keys = source(issuer, clock)
    keys.refresh()
    clock.now += 121
    assert keys.needs_fetch()
    keys.key("rsa-1", "RS256")
    assert issuer.fetches == 2 and not keys.needs_fetch()


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({"cache-control": "max-age=600"}, 600),
        ({"cache-control": "max-age=600", "age": "100"}, 500),
        ({"cache-control": "max-age=1"}, 60),  # held to min_ttl
        ({"cache-control": "max-age=99999999"}, 86400),  # held to max_ttl
        ({"cache-control": "no-cache"}, 60),
        ({"cache-control": "no-store, max-age=600"}, 60),
        (
            {"expires": "Thu, 01 Jan 2026 00:20:00 GMT", "date": "Thu, 01 Jan 2026 00:00:00 GMT"},
            1200,
        ),
        ({"expires": "0"}, 60),  # unreadable: already expired
        ({}, 300),  # no header: the default
        ({"cache-control": "max-age=abc"}, 300),
    ],
)
def test_cache_lifetime_from_headers(headers: dict[str, str], lifetime: float) -> None:
    assert cache_lifetime(headers, now=0.0, default=300, low=60, high=86400) == lifetime


def test_a_short_max_age_is_held_to_the_minimum(issuer: TestIssuer, clock: FakeClock) -> None:
    issuer.cache_headers = {"Cache-Control": "max-age=0"}
    keys = source(issuer, clock, min_ttl=60)
    keys.refresh()
    clock.now += 30
    assert not keys.needs_fetch()
    keys.find("rsa-1", "RS256")
    assert issuer.fetches == 1


def test_an_unknown_kid_refreshes_once_per_interval_then_is_refused(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    keys = source(issuer, clock, unknown_kid_interval=30)
    keys.refresh()
    assert keys.key("made-up-1", "RS256") is None
    assert issuer.fetches == 2
    for index in range(20):  # a flood of made-up kids costs the provider nothing more
        assert keys.key(f"made-up-{index}", "RS256") is None
    assert issuer.fetches == 2
    clock.now += 31
    assert keys.key("made-up-x", "RS256") is None
    assert issuer.fetches == 3


def test_rotation_a_new_kid_is_accepted_after_one_refresh(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    keys = source(issuer, clock)
    keys.refresh()
    issuer.rotate(rsa_key("rsa-2"), drop="rsa-1")
    found = keys.key("rsa-2", "RS256")
    assert found is not None and found.kid == "rsa-2"
    assert issuer.fetches == 2
    assert keys.find("rsa-1", "RS256") is None  # the provider dropped it: so do we


def test_an_outage_keeps_the_known_keys_and_is_logged_once(
    issuer: TestIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    keys = source(issuer, clock)
    keys.refresh()
    issuer.status = 503
    with caplog.at_level(logging.INFO, logger="authgate.jwks"):
        for _ in range(3):
            clock.now += 400
            assert keys.needs_fetch()
            assert keys.refresh()  # keys are still known
            assert keys.find("rsa-1", "RS256") is not None
        # Within the retry wait after a failure, nothing waits on the provider.
        clock.now += 10
        assert not keys.needs_fetch()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "HTTP 503" in warnings[0].getMessage()
        assert "keeping the 2 known keys" in warnings[0].getMessage()
        issuer.status = 200
        clock.now += 400
        keys.refresh()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_without_any_known_key_an_outage_is_keys_unavailable(
    issuer: TestIssuer, clock: FakeClock
) -> None:
    issuer.status = 500
    keys = source(issuer, clock)
    with pytest.raises(KeysUnavailable) as raised:
        keys.key("rsa-1", "RS256")
    assert raised.value.status == 503 and raised.value.code == "keys_unavailable"


def test_an_unreachable_provider_is_an_outage(clock: FakeClock) -> None:
    from tests.support import free_port

    keys = JwksSource(f"http://127.0.0.1:{free_port()}/jwks.json", clock=clock, timeout=2)
    assert not keys.refresh()
    with pytest.raises(KeysUnavailable):
        keys.key("rsa-1", "RS256")


def test_a_stalled_provider_meets_the_deadline(
    issuer: TestIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    keys = source(issuer, clock, timeout=0.5)
    keys.refresh()
    issuer.stall = 3
    clock.now += 400
    with caplog.at_level(logging.WARNING, logger="authgate.jwks"):
        assert keys.refresh()  # returns, with the known keys
    assert any("unavailable" in r.getMessage() for r in caplog.records)
    assert keys.find("rsa-1", "RS256") is not None


@pytest.mark.parametrize(
    "body",
    [b"<html>login</html>", b'{"keys": "nope"}', b"[]", b'{"keys": [{"kty": "RSA"}]}'],
)
def test_a_document_that_is_no_key_set_counts_as_an_outage(
    issuer: TestIssuer, clock: FakeClock, body: bytes
) -> None:
    keys = source(issuer, clock)
    keys.refresh()
    issuer.body = body
    clock.now += 400
    keys.refresh()
    assert keys.find("rsa-1", "RS256") is not None


def test_symmetric_and_encryption_keys_are_never_kept(issuer: TestIssuer, clock: FakeClock) -> None:
    secret = OctKey.generate_key(256, parameters={"kid": "hmac"})
    enc = rsa_key("enc-1")
    document = jwks_document(issuer.keys)
    document["keys"].append(secret.as_dict(private=True))
    document["keys"].append({**enc.as_dict(private=False), "use": "enc"})
    issuer.body = json.dumps(document).encode()
    keys = source(issuer, clock)
    keys.refresh()
    assert sorted(str(key.kid) for key in keys.keys) == ["ec-1", "rsa-1"]
    assert keys.find("hmac", "HS256") is None


def test_an_oversized_key_set_is_refused(issuer: TestIssuer, clock: FakeClock) -> None:
    document = jwks_document(issuer.keys)
    document["padding"] = "x" * MAX_JWKS_BYTES
    issuer.body = json.dumps(document).encode()
    assert not source(issuer, clock).refresh()


def test_redirects_are_not_followed(clock: FakeClock) -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://elsewhere.test/jwks.json"})

    keys = JwksSource(
        "https://idp.test/jwks.json", clock=clock, transport=httpx.MockTransport(handler)
    )
    assert not keys.refresh()


def test_a_file_source_is_re_read_when_it_changes(tmp_path: Path, clock: FakeClock) -> None:
    first, second = rsa_key("file-1"), ec_key("file-2")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_document([first])))
    keys = JwksSource(path, clock=clock, file_poll=1.0)
    assert keys.key("file-1", "RS256") is not None
    path.write_text(json.dumps(jwks_document([first, second])))
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock
    clock.now += 2
    keys.find("file-1", "RS256")  # due: re-read in the background
    assert wait_until(lambda: keys.find("file-2", "ES256") is not None)


def test_a_bad_new_file_keeps_the_previous_keys(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_document([rsa_key("file-1")])))
    keys = JwksSource(path, clock=clock)
    keys.refresh()
    path.write_text("{not json")
    clock.now += 2
    assert keys.refresh()
    assert keys.find("file-1", "RS256") is not None
    path.unlink()
    clock.now += 2
    assert keys.refresh() and keys.find("file-1", "RS256") is not None


def test_a_missing_file_is_keys_unavailable(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(KeysUnavailable):
        JwksSource(tmp_path / "absent.json", clock=clock).key("k", "RS256")


def test_weak_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="min_ttl"):
        JwksSource("https://idp.test/jwks.json", min_ttl=0)
    with pytest.raises(ValueError, match="timeout"):
        JwksSource("https://idp.test/jwks.json", timeout=0)
