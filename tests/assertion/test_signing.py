"""The signing side: the key file, its rotation and overlap, and the reuse cache."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from authgate.assertion import assertions_from_settings
from authgate.assertion.issuer import AssertionIssuer, origin_of
from authgate.assertion.keys import AssertionKeys
from authgate.errors import ConfigurationError
from authgate.principal import Principal
from authgate.settings import Settings

READER = Principal(id="key_1", name="reader", kind="api_key", scopes=frozenset({"read"}))
USER = Principal(
    id="key_2",
    name="alice's",
    kind="api_key",
    scopes=frozenset({"read", "write"}),
    role="member",
    owner_id="usr_1",
    owner_email="alice@example.com",
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _keys(tmp_path: Path, clock: Clock, algorithm: str = "ES256") -> AssertionKeys:
    return AssertionKeys(
        tmp_path / "data" / "assertion.key",
        algorithm,  # type: ignore[arg-type]
        overlap_seconds=120,
        clock=clock,
    )


def _decode(token: str, keys: AssertionKeys) -> dict[str, object]:
    key_set = KeySet.import_key_set(keys.jwks())  # type: ignore[arg-type]
    claims: dict[str, object] = jwt.decode(token, key_set, algorithms=["ES256", "Ed25519"]).claims
    return claims


def test_the_key_file_is_made_0600_in_a_0700_folder(tmp_path: Path) -> None:
    keys = _keys(tmp_path, Clock())
    keys.current()
    assert stat.S_IMODE(os.stat(keys.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys.path.parent).st_mode) == 0o700


@pytest.mark.parametrize(("algorithm", "jose"), [("ES256", "ES256"), ("EdDSA", "Ed25519")])
def test_claims_name_the_caller_and_the_header_names_the_key(
    tmp_path: Path, algorithm: str, jose: str
) -> None:
    clock = Clock()
    keys = _keys(tmp_path, clock, algorithm)
    issuer = AssertionIssuer(
        keys, issuer="authgate", audience="https://app", lifetime_seconds=60, clock=clock
    )
    token = issuer.assertion_for(USER)
    header = jws.extract_compact(token.encode()).protected
    assert header == {"alg": jose, "kid": keys.current().kid, "typ": "JWT"}
    claims = _decode(token, keys)
    assert claims["iss"] == "authgate"
    assert claims["aud"] == "https://app"
    assert claims["sub"] == "usr_1"
    assert claims["key_id"] == "key_2"
    assert claims["email"] == "alice@example.com"
    assert claims["scopes"] == ["read", "write"]
    assert (claims["role"], claims["kind"]) == ("member", "api_key")
    assert claims["exp"] == int(clock.now) + 60 == int(str(claims["iat"])) + 60
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert keys.current().alg == jose
    assert "email" not in _decode(issuer.assertion_for(READER), keys)


def test_an_assertion_is_reused_for_a_quarter_of_its_life_then_renewed(tmp_path: Path) -> None:
    clock = Clock()
    keys = _keys(tmp_path, clock)
    issuer = AssertionIssuer(keys, issuer="i", audience="a", lifetime_seconds=60, clock=clock)
    first = issuer.assertion_for(READER)
    clock.now += 14
    assert issuer.assertion_for(READER) == first
    assert issuer.assertion_for(USER) != first  # another principal, its own token
    clock.now += 2
    renewed = issuer.assertion_for(READER)
    assert renewed != first
    assert _decode(renewed, keys)["iat"] == int(clock.now)


def test_a_changed_scope_set_is_a_new_assertion_at_once(tmp_path: Path) -> None:
    clock = Clock()
    issuer = AssertionIssuer(
        _keys(tmp_path, clock), issuer="i", audience="a", lifetime_seconds=60, clock=clock
    )
    first = issuer.assertion_for(READER)
    wider = Principal(id="key_1", name="reader", kind="api_key", scopes=frozenset({"write"}))
    assert issuer.assertion_for(wider) != first


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    clock = Clock()
    issuer = AssertionIssuer(
        _keys(tmp_path, clock), issuer="i", audience="a", lifetime_seconds=60, clock=clock,
        max_entries=3,
    )  # fmt: skip
    for number in range(10):
        issuer.assertion_for(Principal(id=f"key_{number}", name="n", kind="api_key"))
    assert len(issuer._cache) == 3


def test_rotation_keeps_the_old_key_published_for_the_overlap_only(tmp_path: Path) -> None:
    clock = Clock()
    keys = _keys(tmp_path, clock)
    old = keys.current().kid
    issuer = AssertionIssuer(keys, issuer="i", audience="a", lifetime_seconds=60, clock=clock)
    signed_before = issuer.assertion_for(READER)
    report = keys.rotate()
    assert report.kid != old
    assert keys.current().kid == report.kid
    published = {key["kid"] for key in keys.jwks()["keys"]}
    assert published == {old, report.kid}
    assert _decode(signed_before, keys)["sub"] == "key_1"
    clock.now += 121
    assert {key["kid"] for key in keys.jwks()["keys"]} == {report.kid}
    second = keys.rotate()
    assert second.dropped == 1
    assert len(json.loads(keys.path.read_text())["keys"]) == 2


def test_a_running_signer_picks_up_a_rotation_by_another_process(tmp_path: Path) -> None:
    clock = Clock()
    signer = _keys(tmp_path, clock)
    before = signer.current().kid
    rotated = _keys(tmp_path, clock).rotate()
    signer._checked_at = float("-inf")  # as if the reload interval had passed
    assert signer.current().kid == rotated.kid != before


def test_a_damaged_key_file_is_refused_and_kept(tmp_path: Path) -> None:
    keys = _keys(tmp_path, Clock())
    keys.current()
    keys.path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="damaged"):
        _keys(tmp_path, Clock()).current()
    assert keys.path.read_text() == "{not json"


def test_a_loose_key_file_is_refused(tmp_path: Path) -> None:
    keys = _keys(tmp_path, Clock())
    keys.current()
    keys.path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        _keys(tmp_path, Clock()).current()


def test_a_key_of_another_algorithm_asks_for_a_rotation(tmp_path: Path) -> None:
    _keys(tmp_path, Clock(), "ES256").current()
    eddsa = _keys(tmp_path, Clock(), "EdDSA")
    with pytest.raises(ConfigurationError, match="assertion-key rotate"):
        eddsa.current()
    eddsa.rotate()
    assert eddsa.current().alg == "Ed25519"
    assert {key["kty"] for key in eddsa.jwks()["keys"]} == {"EC", "OKP"}


def test_the_audience_defaults_to_the_upstreams_origin(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", assertion=True, upstream_url="HTTP://App.Internal:80/base/"
    )
    issuer = assertions_from_settings(settings)
    assert issuer is not None
    assert issuer.audience == "http://app.internal"
    assert origin_of("https://[::1]:8443/x") == "https://[::1]:8443"


def test_assertions_without_an_audience_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="assertion_audience"):
        assertions_from_settings(Settings(data_dir=tmp_path / "data", assertion=True))
    assert assertions_from_settings(Settings(data_dir=tmp_path / "data")) is None
