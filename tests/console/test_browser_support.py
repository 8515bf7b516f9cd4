"""The browser helpers work against a page that sends a strict Content-Security-Policy,
as the console's pages will: axe-core runs there, finds a known serious violation, and
finds none on an accessible page."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.console import browser as support
from tests.console.browser import axe_violations, browser

POLICY = "default-src 'self'"
# An inline script the policy must block: it would retitle the page if it ran.
INLINE = "<script>document.title = 'inline script ran'</script>"
PAGES = {
    "/accessible": f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keys</title></head>
<body><main><h1>Keys</h1>
<form><label for="name">Name</label> <input id="name" name="name">
<button type="submit">Create</button></form></main>{INLINE}</body></html>""",
    "/unlabelled": f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keys</title></head>
<body><main><h1>Keys</h1>
<form><input name="name"> <button type="submit">Create</button></form>
</main>{INLINE}</body></html>""",
}


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = PAGES.get(self.path)
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", POLICY)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as launched:
        yield launched


def _violations(chromium: Browser, url: str) -> list[dict[str, Any]]:
    page = chromium.new_page()
    try:
        answer = page.goto(url)
        assert answer is not None and answer.headers["content-security-policy"] == POLICY
        # The policy is in force: the page's own inline script did not run.
        assert page.title() == "Keys"
        return axe_violations(page)
    finally:
        page.close()


def test_an_accessible_page_has_no_violations(chromium: Browser, site: str) -> None:
    assert _violations(chromium, f"{site}/accessible") == []


def test_an_unlabelled_input_is_a_violation(chromium: Browser, site: str) -> None:
    found = _violations(chromium, f"{site}/unlabelled")
    assert [violation["id"] for violation in found] == ["label"]
    assert found[0]["impact"] == "critical"


def test_impacts_choose_which_violations_are_returned(chromium: Browser, site: str) -> None:
    page = chromium.new_page()
    try:
        page.goto(f"{site}/unlabelled")
        assert axe_violations(page, impacts=("minor",)) == []
        assert [v["id"] for v in axe_violations(page, impacts=("critical",))] == ["label"]
    finally:
        page.close()


def test_a_missing_chromium_fails_naming_the_installer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(support, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(pytest.fail.Exception, match=r"\./scripts/test installs"):
        with browser():
            pass


def test_a_missing_axe_fails_naming_the_installer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chromium: Browser, site: str
) -> None:
    monkeypatch.setattr(support, "AXE", tmp_path / "axe.min.js")
    support._axe_source.cache_clear()
    page = chromium.new_page()
    try:
        page.goto(f"{site}/accessible")
        with pytest.raises(pytest.fail.Exception, match=r"\./scripts/test installs axe-core"):
            axe_violations(page)
    finally:
        page.close()
        support._axe_source.cache_clear()
