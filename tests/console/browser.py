"""A real browser for the console's tests: Debian's Chromium driven by Playwright, and
axe-core's accessibility checks run inside its pages.

Both are test-only: ``./scripts/test`` installs Chromium with apt and axe-core with npm
into the checkout's git-ignored ``.cache/axe``; the product itself fetches nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

__all__ = ["AXE", "CHROMIUM", "axe_violations", "browser"]

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / ".cache/axe/node_modules/axe-core/axe.min.js"


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium, closed on exit; fails (never skips) when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: ./scripts/test installs it (Debian's chromium)")
    # Chromium's sandbox refuses to start as root, which is how the suite and CI run.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield launched
        finally:
            launched.close()


@functools.cache
def _axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: ./scripts/test installs axe-core with npm")
    return AXE.read_text(encoding="utf-8")


def axe_violations(
    page: Page, impacts: Sequence[str] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, those of the given impacts only."""
    # The console's pages forbid inline script by their Content-Security-Policy, so a
    # <script> tag added to the page (Playwright's add_script_tag) would be blocked.
    # page.evaluate runs the source through the DevTools protocol, which CSP does not
    # govern, and the page keeps its real policy while it is audited; a context made with
    # bypass_csp would instead audit a page that behaves unlike the one users get.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    results = cast(dict[str, Any], page.evaluate("() => window.axe.run(document)"))
    violations = cast(list[dict[str, Any]], results["violations"])
    return [violation for violation in violations if violation["impact"] in impacts]
