"""Bucket names as S3 spells them, and the bucket patterns a grant may name instead.

A grant names a bucket (``photos``) or a pattern (``backup-*``, ``*``). ``*`` is the only
wildcard and stands for any run of the characters a bucket name may hold (lower-case
letters, digits, ``.`` and ``-``, none included); nothing else is special, so ``?``,
``[`` or capitals in a grant are refused rather than read as something else. A pattern
never admits a name S3 would refuse: names are checked (``InvalidBucketName``) before
any grant is.

Which grant decides (``grant_for``): the most specific one that admits the name.

1. a grant on the exact name beats every pattern;
2. among patterns, the one with the most literal (non-``*``) characters;
3. then the one with the longer literal start (the characters before its first ``*``);
4. then the pattern that sorts first, so that the answer never depends on the order the
   grants were stored in.

So with ``*=admin``, ``backup-*=write`` and ``backup-keep=read``: ``photos`` is admin,
``backup-2026`` write, ``backup-keep`` read (a narrower grant can take rights away).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from ipaddress import IPv4Address

from authgate.sigv4.errors import S3Error

__all__ = [
    "InvalidBucketName",
    "bucket_name_problem",
    "grant_for",
    "is_pattern",
    "pattern_problem",
]

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_PATTERN_CHARS = re.compile(r"[a-z0-9.*-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3")


class InvalidBucketName(S3Error):
    """A request naming a bucket S3 would refuse to have: answered before any grant."""

    s3_code = "InvalidBucketName"
    status = 400
    code = "s3_invalid_bucket_name"
    default_detail = "The specified bucket is not valid."


def _is_ipv4(name: str) -> bool:
    try:
        IPv4Address(name)
    except ValueError:
        return False
    return True


def bucket_name_problem(name: str) -> str | None:
    """What makes ``name`` a bucket name S3 refuses, or ``None`` for a valid one."""
    if not 3 <= len(name) <= 63:
        return f"it is {len(name)} characters long"
    if not _BUCKET_CHARS.fullmatch(name):
        return "it has characters other than lower-case letters, digits, '.' and '-'"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "it must start and end with a letter or digit"
    if ".." in name:
        return "it has two adjacent periods"
    if _is_ipv4(name):
        return "it is formatted as an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "S3 reserves its prefix or suffix"
    return None


def is_pattern(target: str) -> bool:
    return "*" in target


def pattern_problem(pattern: str) -> str | None:
    """What makes ``pattern`` no bucket pattern (``*`` in a bucket name, or ``*``)."""
    if pattern == "*":
        return None
    if len(pattern) > 63:
        return f"it is {len(pattern)} characters long, and no bucket name is over 63"
    if not _PATTERN_CHARS.fullmatch(pattern):
        return (
            "it has characters other than lower-case letters, digits, '.', '-' and '*' "
            "(the only wildcard)"
        )
    if "**" in pattern:
        return "it has '**': one '*' already stands for any run of characters"
    ends = (pattern[0], pattern[-1])
    if not all(end.isalnum() or end == "*" for end in ends):
        return "it must start and end with a letter, a digit or '*'"
    if ".." in pattern:
        return "it has two adjacent periods"
    literal_start = pattern.split("*", 1)[0]
    literal_end = pattern.rsplit("*", 1)[-1]
    if literal_start.startswith(_RESERVED_PREFIXES):
        return "S3 reserves its prefix"
    if literal_end.endswith(_RESERVED_SUFFIXES):
        return "S3 reserves its suffix"
    return None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Only validated patterns reach this: every literal part is bucket characters.
    return re.compile("[a-z0-9.-]*".join(re.escape(part) for part in pattern.split("*")))


def _specificity(pattern: str) -> tuple[int, int, str]:
    literal = len(pattern) - pattern.count("*")
    start = len(pattern.split("*", 1)[0])
    # Larger first for the counts; the pattern itself, ascending, breaks a tie.
    return (-literal, -start, pattern)


def grant_for(grants: Mapping[str, str], bucket: str) -> str | None:
    """The permission of the most specific grant admitting ``bucket``, or ``None``."""
    exact = grants.get(bucket)
    if exact is not None:
        return exact
    best: tuple[int, int, str] | None = None
    permission = None
    for target, granted in grants.items():
        if "*" not in target or not _compiled(target).fullmatch(bucket):
            continue
        rank = _specificity(target)
        if best is None or rank < best:
            best, permission = rank, granted
    return permission
