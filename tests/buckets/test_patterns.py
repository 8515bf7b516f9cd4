"""Bucket patterns in grants: what a pattern is, what it admits, which grant decides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authgate.errors import InvalidRequest
from authgate.manage.access_keys import parse_grant, validate_bucket, validate_grants
from authgate.s3.buckets import bucket_name_problem, grant_for, pattern_problem
from authgate.s3.grants import UnclearBucket, required_grant
from authgate.s3.listbuckets import filter_list_buckets, listed_buckets

GRANTS = {"*": "admin", "backup-*": "write", "backup-keep": "read", "backup-*-eu": "read"}


@pytest.mark.parametrize(
    ("bucket", "permission"),
    [
        ("photos", "admin"),  # only "*" admits it
        ("backup-2026-12-01", "write"),  # backup-* (7 literal characters) beats *
        ("backup-keep", "read"),  # the exact name beats every pattern
        ("backup-x-eu", "read"),  # backup-*-eu (10 literal) beats backup-* (7)
    ],
)
def test_the_most_specific_grant_decides(bucket: str, permission: str) -> None:
    assert grant_for(GRANTS, bucket) == permission


def test_a_narrower_grant_takes_rights_away() -> None:
    assert grant_for({"*": "admin", "payroll": "read"}, "payroll") == "read"
    assert grant_for({"*": "admin", "payroll-*": "read"}, "payroll-2026") == "read"


def test_ties_are_broken_by_the_literal_start_then_the_pattern_itself() -> None:
    # Same number of literal characters: the longer literal start wins, whatever the order.
    for grants in ({"ab*": "read", "*ab": "admin"}, {"*ab": "admin", "ab*": "read"}):
        assert grant_for(grants, "abab") == "read"
    # Same literal count and start: the pattern that sorts first.
    for grants in ({"a*b*c": "read", "a*bc*": "write"}, {"a*bc*": "write", "a*b*c": "read"}):
        assert grant_for(grants, "axbcxc") == "read"  # "a*b*c" sorts before "a*bc*"


@pytest.mark.parametrize(
    ("pattern", "name", "admitted"),
    [
        ("backup-*", "backup-2026", True),
        ("backup-*", "backup-a.b.c", True),  # '*' runs over dots, as bucket names may
        ("backup-*", "backups", False),
        ("backup-*", "my-backup-1", False),  # anchored at both ends
        ("*-logs", "app-logs", True),
        ("*-logs", "app-logs-old", False),
        ("ci.*", "ci.run.4711", True),
        ("ci.*", "ci-run", False),  # '.' is a dot, not any character
        ("a*z", "a-z", True),
    ],
)
def test_what_a_pattern_admits(pattern: str, name: str, admitted: bool) -> None:
    assert (grant_for({pattern: "read"}, name) == "read") is admitted


def test_a_pattern_is_not_a_regular_expression() -> None:
    # "." is a literal dot, so "backup-.*" admits "backup-.x" but not "backup-x".
    assert grant_for({"backup-.*": "read"}, "backup-x") is None
    assert grant_for({"backup-.*": "read"}, "backup-.x") == "read"


def test_an_exact_grant_is_not_a_pattern() -> None:
    # A bucket name that looks like a pattern's text admits only itself.
    assert grant_for({"backup-x": "admin"}, "backup-xy") is None


@pytest.mark.parametrize(
    "pattern",
    [
        "Backup-*",  # capitals: S3 names have none, and folding would admit others
        "backup-?",
        "backup-[0-9]",
        "**",
        "backup-**",
        "-*",
        "*-",
        "a..*",
        "xn--*",
        "sthree-*",
        "*-s3alias",
        "*--ol-s3",
        "a" * 63 + "*",
        "back up-*",
        "backup-%2A",
        "",
    ],
)
def test_invalid_patterns_are_refused_with_the_rule(pattern: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_bucket(pattern)
    assert "pattern" in raised.value.detail or "bucket name" in raised.value.detail


@pytest.mark.parametrize("pattern", ["*", "backup-*", "*-logs", "ci-run-*", "a*z", "*.example"])
def test_valid_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    assert validate_bucket(pattern) == pattern
    assert parse_grant(f"{pattern}=write") == (pattern, "write")


def test_grants_with_patterns_validate_as_one_map() -> None:
    assert validate_grants({"*": "admin", "backup-*": "write"}) == {
        "*": "admin",
        "backup-*": "write",
    }
    with pytest.raises(InvalidRequest):
        validate_grants({"backup-?": "write"})


BUCKET_NAME = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True).filter(
    lambda name: bucket_name_problem(name) is None
)


@given(BUCKET_NAME)
def test_star_admits_every_valid_bucket_name(name: str) -> None:
    assert grant_for({"*": "read"}, name) == "read"


@given(BUCKET_NAME, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", max_size=8))
def test_a_prefix_pattern_admits_exactly_its_names(name: str, prefix: str) -> None:
    pattern = "p" + prefix + "*"
    if pattern_problem(pattern) is not None:
        return
    admitted = grant_for({pattern: "read"}, name) == "read"
    assert admitted is name.startswith(pattern[:-1])


def _listing(*names: str) -> bytes:
    buckets = "".join(f"<Bucket><Name>{n}</Name></Bucket>" for n in names)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult>'
        b"<Owner><ID>o</ID></Owner><Buckets>" + buckets.encode() + b"</Buckets>"
        b"</ListAllMyBucketsResult>"
    )


def test_list_buckets_filters_by_the_deciding_grant() -> None:
    body = _listing("backup-1", "backup-keep", "ci-run-1", "photos")
    grants = {"backup-*": "write", "ci-*": "read"}
    assert listed_buckets(filter_list_buckets(body, grants)) == [
        "backup-1",
        "backup-keep",
        "ci-run-1",
    ]
    # The most specific grant decides here too: read is what listing needs, so a narrower
    # grant still lists; a grant that admits nothing lists nothing.
    assert listed_buckets(filter_list_buckets(body, {"*": "read"})) == [
        "backup-1",
        "backup-keep",
        "ci-run-1",
        "photos",
    ]
    assert listed_buckets(filter_list_buckets(body, {"backup-x*": "admin"})) == []


@pytest.mark.parametrize("path", ["/backup-*/k", "/*/k", "/%2A/k", "/backup-%2A/k", "/Backup-1/k"])
def test_a_request_cannot_name_a_pattern_as_its_bucket(path: str) -> None:
    # A grant's text is never a bucket a request can name: "*" is not a bucket character.
    with pytest.raises(UnclearBucket):
        required_grant("GET", path, "127.0.0.1:9000", ())
