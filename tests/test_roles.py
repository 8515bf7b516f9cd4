"""Roles and scopes from configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authgate.errors import ConfigurationError, InvalidRequest
from authgate.manage.roles import RoleCatalogue, ScopesRefused, holds
from authgate.principal import Principal
from authgate.settings import load_settings


def _catalogue(tmp_path: Path, **overrides: Any) -> RoleCatalogue:
    return RoleCatalogue.from_settings(load_settings(data_dir=tmp_path, **overrides))


def test_defaults(tmp_path: Path) -> None:
    roles = _catalogue(tmp_path)
    assert roles.roles == ("admin", "member")
    assert roles.grantable("admin") >= {"tokens:manage", "users:manage"}
    assert not roles.grantable("member") & {"tokens:manage", "users:manage"}
    assert roles.resolve(None, roles.grantable("member")) == ("read",)
    assert (roles.expiry.minimum, roles.expiry.maximum, roles.expiry.default) == (1, 30, 30)


def test_requests_are_checked_never_trimmed(tmp_path: Path) -> None:
    roles = _catalogue(tmp_path)
    member = roles.grantable("member")
    assert roles.resolve(["write", "read", "write"], member) == ("write", "read")
    with pytest.raises(ScopesRefused) as refused:
        roles.resolve(["read", "tokens:manage", "users:manage"], member)
    assert refused.value.refused == ("tokens:manage", "users:manage")
    assert refused.value.status == 403
    with pytest.raises(InvalidRequest, match="unknown scope 'nope'"):
        roles.resolve(["nope"], member)
    assert roles.resolve([], member) == ()


def test_management_scopes_are_never_implied_by_a_wildcard() -> None:
    static = Principal(id="s", name="s", kind="static_token", scopes=frozenset({"*"}))
    assert not holds(static, "tokens:manage")
    admin = Principal(id="a", name="a", kind="admin_key", role="admin")
    assert holds(admin, "tokens:manage")


def test_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGATE_SCOPES", "read, write, deploy, tokens:manage, users:manage")
    monkeypatch.setenv(
        "AUTHGATE_ROLE_SCOPES",
        '{"admin": ["read", "write", "deploy", "tokens:manage", "users:manage"], "ci": ["deploy"]}',
    )
    monkeypatch.setenv("AUTHGATE_DEFAULT_SCOPES", "deploy")
    roles = _catalogue(tmp_path)
    assert roles.roles == ("admin", "ci")
    assert roles.resolve(None, roles.grantable("ci")) == ("deploy",)


def test_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        'scopes = ["read", "tokens:manage", "users:manage"]\n'
        'default_scopes = ["read"]\n'
        "token_days_max = 90\n"
        "[role_scopes]\n"
        'admin = ["read", "tokens:manage", "users:manage"]\n'
        'viewer = ["read"]\n'
    )
    roles = RoleCatalogue.from_settings(load_settings(config, data_dir=tmp_path))
    assert roles.roles == ("admin", "viewer")
    assert roles.expiry.check(90) == 90


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role_scopes": {"admin": ["read", "fly"]}}, "role_scopes.admin: unknown scope 'fly'"),
        (
            {"role_scopes": {"member": ["read", "wirte"]}},
            r"role_scopes.member: unknown scope 'wirte' \(did you mean 'write'\?\)",
        ),
        ({"default_scopes": "read,fly"}, "default_scopes: unknown scope 'fly'"),
        ({"scopes": "read,*"}, "invalid scope names '\\*'"),
        ({"token_days_default": 40}, "token_days_default must lie between"),
    ],
)
def test_inconsistent_configuration_is_refused(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _catalogue(tmp_path, **overrides)


def test_the_catalogue_is_the_built_in_scopes_plus_the_setting(tmp_path: Path) -> None:
    roles = _catalogue(tmp_path, scopes="packages:write")
    built_in = ("read", "write", "tokens:manage", "users:manage", "metrics:read")
    assert roles.scopes == (*built_in, "packages:write")
    # An added scope is at once the admins' to grant, and nobody else's unless configured.
    assert "packages:write" in roles.grantable("admin")
    assert "packages:write" not in roles.grantable("member")
    assert roles.check_known(["packages:write", "read"]) == ("packages:write", "read")
    assert [(s["name"], s["origin"], s["roles"]) for s in roles.describe()][-1] == (
        "packages:write",
        "scopes setting",
        ["admin"],
    )


def test_an_unknown_scope_is_refused_with_the_closest_known_one(tmp_path: Path) -> None:
    roles = _catalogue(tmp_path, scopes="packages:write")
    with pytest.raises(InvalidRequest) as refused:
        roles.check_known(["read", "pakages:write"])
    assert refused.value.status == 422
    assert "unknown scope 'pakages:write' (did you mean 'packages:write'?)" in (
        refused.value.detail
    )
    assert "scopes setting" in refused.value.detail


def test_the_admin_role_grants_the_whole_catalogue_even_when_unlisted(tmp_path: Path) -> None:
    roles = _catalogue(tmp_path, scopes="deploy", role_scopes={"ci": ["deploy"]})
    assert roles.roles == ("admin", "ci")
    assert roles.grantable("admin") == set(roles.scopes)
