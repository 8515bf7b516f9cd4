"""SECURITY.md names a test for every promise, and every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECURITY = ROOT / "SECURITY.md"


def _promise_rows() -> list[str]:
    rows = [line for line in SECURITY.read_text().splitlines() if line.startswith("| ")]
    return [row for row in rows if not row.startswith("| promise") and "---" not in row]


def test_every_promise_names_at_least_one_test() -> None:
    rows = _promise_rows()
    assert rows, "SECURITY.md lists no promises"
    untested = [row for row in rows if "`tests/" not in row.rsplit("|", 2)[-2]]
    assert untested == []


def test_every_test_security_md_names_exists() -> None:
    named = re.findall(r"`(tests/[^`]+)`", SECURITY.read_text())
    assert named
    missing = [path for path in named if not (ROOT / path).exists()]
    assert missing == []
