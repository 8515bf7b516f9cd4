"""Rules, patterns, default deny and the canonical path, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authgate.errors import ConfigurationError
from authgate.policy import (
    DEFAULT_RULE,
    InvalidPath,
    Policy,
    Rule,
    canonical_path,
    rules_from_config,
)
from authgate.principal import Principal
from authgate.settings import load_settings

CLASSIC = Policy(
    [
        Rule("GET", "/packages/**", public=True),
        Rule("POST", "/packages/*/approve", role="admin"),
        Rule("POST", "/packages/*/reject", role="admin"),
        Rule("POST", "/packages", scopes=["packages:write"]),
    ]
)


def who(*scopes: str, role: str | None = None) -> Principal:
    return Principal(id="k", name="k", kind="api_key", scopes=frozenset(scopes), role=role)


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("GET", "/packages", "public"),
        ("HEAD", "/packages", "public"),
        ("GET", "/packages/demo", "public"),
        ("GET", "/packages/search", "public"),
        ("POST", "/packages/demo/approve", "role"),
        ("POST", "/packages/demo/reject", "role"),
        ("POST", "/packages", "scopes"),
        ("DELETE", "/packages/demo", "default"),
        ("POST", "/packages/demo", "default"),
        ("GET", "/elsewhere", "default"),
    ],
)
def test_the_classic_layout_is_one_short_list(method: str, path: str, access: str) -> None:
    rule = CLASSIC.match(method, canonical_path(path).match)
    assert ("default" if rule is DEFAULT_RULE else rule.access) == access


def test_first_match_wins() -> None:
    policy = Policy([Rule("*", "/a/**", public=True), Rule("*", "/a/secret", role="admin")])
    assert policy.match("GET", "/a/secret").public


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/", "", True),
        ("/", "/x", False),
        ("/**", "", True),
        ("/**", "/a/b/c", True),
        ("/a", "/a", True),
        ("/a", "/ab", False),
        ("/a", "/a/b", False),
        ("/a/*", "/a/b", True),
        ("/a/*", "/a", False),
        ("/a/*", "/a/b/c", False),
        ("/a/{name}/c", "/a/b/c", True),
        ("/a/**", "/a", True),
        ("/a/**", "/a/b/c", True),
        ("/a/**", "/abc", False),
        ("/a/**/z", "/a/z", True),
        ("/a/**/z", "/a/b/c/z", True),
        ("/files/*.json", "/files/x.json", True),
        ("/files/*.json", "/files/x.jsonp", False),
        ("/files/*.json", "/files/d/x.json", False),
        ("/Admin", "/aDMIN", True),
        ("/a.b", "/aXb", False),
    ],
)
def test_patterns(pattern: str, path: str, matches: bool) -> None:
    assert Rule("*", pattern).matches("GET", path) is matches


def test_methods() -> None:
    assert Rule("GET", "/x").methods == frozenset({"GET", "HEAD"})
    assert Rule("get, post", "/x").methods == frozenset({"GET", "HEAD", "POST"})
    assert Rule(["PUT", "DELETE"], "/x").methods == frozenset({"PUT", "DELETE"})
    assert Rule("*", "/x").methods is None
    assert not Rule("POST", "/x").matches("GET", "/x")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Rule("GET", "x"),
        lambda: Rule("GET", "/a//b"),
        lambda: Rule("GET", "/a/../b"),
        lambda: Rule("GET", "/a/**b"),
        lambda: Rule("GET", "/a/{x}y"),
        lambda: Rule("", "/a"),
        lambda: Rule("G3T", "/a"),
        lambda: Rule("GET", "/a", public=True, scopes=["s"]),
        lambda: Rule("GET", "/a", public=True, role="admin"),
    ],
)
def test_bad_rules_are_refused_with_a_message(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


def test_authorize() -> None:
    scoped = Rule("POST", "/x", scopes=["a", "b"])
    assert scoped.authorize(who("a", "b", "c")) is None
    refusal = scoped.authorize(who("a"))
    assert refusal is not None and refusal.status == 403 and "a, b" in refusal.detail
    # "*" is every application scope (static tokens, the bypass), but not a role.
    assert scoped.authorize(who("*")) is None
    assert Rule("POST", "/x", role="admin").authorize(who("*")) is not None
    # Admins pass every check, the default deny included.
    assert Rule("POST", "/x", role="editor").authorize(who(role="admin")) is None
    assert scoped.authorize(who(role="admin")) is None
    assert DEFAULT_RULE.authorize(who(role="admin")) is None
    denied = DEFAULT_RULE.authorize(who("a"))
    assert denied is not None and denied.detail == "No rule allows this request."
    assert Rule("*", "/x", role="editor").authorize(who(role="editor")) is None
    assert Rule("*", "/x").authorize(who()) is None


# -- canonical paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path", "match"),
    [
        ("/", "/", ""),
        ("/a/b", "/a/b", "/a/b"),
        ("/a/b/", "/a/b/", "/a/b"),
        ("//a", "/a", "/a"),
        ("/a//b///c", "/a/b/c", "/a/b/c"),
        ("/a/./b", "/a/b", "/a/b"),
        ("/a/../b", "/b", "/b"),
        ("/a/b/..", "/a/", "/a"),
        ("/a/%2e%2e/b", "/b", "/b"),
        ("/a/%2E%2e/b", "/b", "/b"),
        ("/a/.%2e/b", "/b", "/b"),
        ("/%61dmin", "/admin", "/admin"),
        ("/caf%C3%A9", "/café", "/café"),
        ("/a%252e%252e/b", "/a%2e%2e/b", "/a%2e%2e/b"),
        ("/a;x=1/b", "/a;x=1/b", "/a;x=1/b"),
    ],
)
def test_canonical_paths(raw: str, path: str, match: str) -> None:
    canon = canonical_path(raw)
    assert (canon.path, canon.match) == (path, match)
    assert canon.changed is (canon.raw_path != raw)


def test_the_raw_form_keeps_the_clients_escapes() -> None:
    canon = canonical_path("/x/../caf%C3%A9//y")
    assert canon.raw_path == "/caf%C3%A9/y"
    assert canon.path == "/café/y"


@pytest.mark.parametrize(
    "raw",
    [
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a\\b",
        "/a%00b",
        "/a%0ab",
        "/a%7fb",
        "/..",
        "/a/../..",
        "/%2e%2e/x",
        "/x/..;/admin",
        "/x/.;/admin",
        "/%ff",
        "a/b",
        "*",
        "",
    ],
)
def test_unsafe_paths_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPath) as caught:
        canonical_path(raw)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_path"


def test_decoded_paths_are_not_decoded_twice() -> None:
    # WSGI's PATH_INFO is already decoded: a literal "%2e%2e" is a name, not "..".
    assert canonical_path("/a/%2e%2e/b", encoded=False).match == "/a/%2e%2e/b"
    # ... and its bytes arrive as latin-1 (PEP 3333).
    latin1 = "/café".encode().decode("latin-1")
    canon = canonical_path("/x/.." + latin1, encoded=False)
    assert canon.match == "/café"
    assert canon.path == latin1


segments = st.lists(
    st.sampled_from(["", ".", "..", "a", "B", "%2e", "%2E%2e", "c%20d", "é", "%41"]),
    max_size=8,
)


@given(segments, st.booleans())
def test_canonical_form_is_stable(parts: list[str], trailing: bool) -> None:
    raw = "/" + "/".join(parts) + ("/" if trailing else "")
    try:
        canon = canonical_path(raw)
    except InvalidPath:
        return
    again = canonical_path(canon.raw_path)
    assert (again.path, again.match, again.changed) == (canon.path, canon.match, False)
    assert "//" not in canon.path
    assert not any(seg in (".", "..") for seg in canon.match.split("/"))


# -- rules from the config file ------------------------------------------------------------


def test_rules_from_toml(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        """
[[rules]]
method = "GET"
path = "/packages/**"
public = true

[[rules]]
methods = ["POST"]
path = "/packages/*/approve"
role = "admin"

[[rules]]
methods = "POST, PUT"
path = "/packages"
scopes = ["packages:write"]
""",
        encoding="utf-8",
    )
    settings = load_settings(config, data_dir=data_dir)
    assert rules_from_config(settings.rules) == [
        Rule("GET", "/packages/**", public=True),
        Rule("POST", "/packages/*/approve", role="admin"),
        Rule("POST,PUT", "/packages", scopes=["packages:write"]),
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('path = "packages"', "must start with '/'"),
        ('path = "/x"\npublic = true\nrole = "admin"', "public rule cannot"),
        ('path = "/x"\nmethod = "GET"\nmethods = ["POST"]', "not both"),
        ('path = "/x"\nscope = "typo"', "scope"),
    ],
)
def test_bad_rules_in_toml_stop_startup(
    tmp_path: Path, data_dir: Path, table: str, message: str
) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(f"[[rules]]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, data_dir=data_dir)
    assert "rules" in caught.value.detail and message in caught.value.detail


def test_rules_from_the_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv(
        "AUTHGATE_RULES", '[{"method": "GET", "path": "/x/**", "public": true}, {"path": "/**"}]'
    )
    rules = rules_from_config(load_settings(data_dir=data_dir).rules)
    assert rules == [Rule("GET", "/x/**", public=True), Rule("*", "/**")]


_SCOPE_SETS = st.frozensets(st.sampled_from(["read", "write", "admin:x", "*"]), max_size=3)
