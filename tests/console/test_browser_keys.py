"""The console's key pages in a real browser against a real ``authgate serve``: signing in
through the form, a token shown once and copied, rotation with a grace period,
revocation behind a confirmation, search and paging, a keyboard-only flow, failed and
locked-out logins, what a member may see, and axe-core's checks on every page.

The localhost bypass is off: the browser runs as root on the server's own machine, and
with the bypass on it would be admitted without a login, so no login page would ever be
exercised. One server serves the whole module, its per-account login limit lowered so a
lock-out takes a few attempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from tests.console.browser import axe_violations, browser
from tests.foundation.helpers import clean_env, run_authgate, serve_process
from tests.support import free_port

OPERATOR = "admin"
OPERATOR_PASSWORD = "operator-passphrase-41"
MEMBER = "member@example.com"
MEMBER_PASSWORD = "member-passphrase-41"
LOCKED = "locked@example.com"
LOCKED_PASSWORD = "locked-passphrase-41"
LOGIN_LIMIT = 3


@dataclass(frozen=True)
class Console:
    url: str
    admin_key: str

    def page(self, tail: str = "") -> str:
        return f"{self.url}/authgate/console/{tail}"

    def whoami(self, token: str) -> httpx.Response:
        return httpx.get(f"{self.url}/authgate/v1/whoami", headers={"X-API-Key": token})

    def service_key(self, name: str, **body: Any) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.url}/authgate/v1/tokens",
            headers={"X-API-Key": self.admin_key},
            json={"name": name, **body},
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console-keys")
    data = root / "data"
    serve_env = clean_env(
        XDG_CONFIG_HOME=str(root / "config"),
        AUTHGATE_LOCALHOST_BYPASS="off",
        AUTHGATE_PASSWORD=OPERATOR_PASSWORD,
        AUTHGATE_LOGIN_RATE_LIMIT=f"{LOGIN_LIMIT}/15 minutes",
    )
    with serve_process(root / "serve", free_port(), "--data-dir", str(data), env=serve_env) as (
        served
    ):
        key = run_authgate(
            "--data-dir", str(data), "admin-key", env=clean_env(XDG_CONFIG_HOME=str(root))
        )
        assert key.returncode == 0, key.stderr
        made = Console(served.url, key.stdout.strip())
        for email, password in ((MEMBER, MEMBER_PASSWORD), (LOCKED, LOCKED_PASSWORD)):
            added = httpx.post(
                f"{made.url}/authgate/v1/users",
                headers={"X-API-Key": made.admin_key},
                json={"email": email, "password": password, "role": "member"},
            )
            assert added.status_code == 201, added.text
        yield made


@pytest.fixture(scope="module", autouse=True)
def patient_expectations() -> Iterator[None]:
    """A sign-in hashes a password: on a busy machine a page can take longer than the
    five seconds ``expect`` waits by default. What is checked stays the same."""
    expect.set_options(timeout=20_000)
    try:
        yield
    finally:
        expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as launched:
        yield launched


@pytest.fixture
def context(chromium: Browser, console: Console) -> Iterator[BrowserContext]:
    """A browser of its own for each test (its own cookies), allowed the clipboard."""
    made = chromium.new_context(viewport={"width": 1280, "height": 900})
    made.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, console: Console, identity: str, password: str) -> None:
    page.goto(console.page("login"))
    page.get_by_label("Email, or the operator account").fill(identity)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def create_key_in_console(page: Page, console: Console, name: str, scopes: list[str]) -> str:
    """Create a key through the keys page's form; the token the page shows."""
    page.goto(console.page("keys"))
    page.get_by_label("Name", exact=True).fill(name)
    for scope in scopes:
        page.get_by_role("checkbox", name=scope, exact=True).check()
    page.get_by_label(re.compile(r"^Expires in")).fill("7")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Key {name} created")
    return page.get_by_label("Token").input_value()


def test_operator_creates_a_key_shown_once_and_copied(page: Page, console: Console) -> None:
    page.goto(console.page("keys"))
    # Not signed in: the console sends the browser to its login form, and back after.
    expect(page).to_have_url(re.compile(r"/authgate/console/login\?next="))
    page.get_by_label("Email, or the operator account").fill(OPERATOR)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(console.page("keys"))
    expect(page.locator(".who")).to_contain_text(OPERATOR)

    token = create_key_in_console(page, console, "billing-ci", ["read", "write"])
    expect(page.locator("dl")).to_contain_text("read, write")
    whoami = console.whoami(token)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["scopes"] == ["read", "write"]
    assert whoami.json()["name"] == "billing-ci"

    page.get_by_role("button", name="Copy token").click()
    expect(page.locator(".copied")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == token

    page.get_by_role("link", name="Go to the key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key billing-ci")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key billing-ci")
    assert token not in page.content()
    # The key page names the key by its hint, a fragment too short to authenticate.
    hint = page.locator("dt:has-text('Hint') + dd").inner_text().removesuffix("…")
    assert token.startswith(hint) and len(hint) < len(token) // 2


def test_rotate_with_grace_then_revoke(page: Page, console: Console) -> None:
    sign_in(page, console, OPERATOR, OPERATOR_PASSWORD)
    old = create_key_in_console(page, console, "deploy-bot", ["read"])
    page.get_by_role("link", name="Go to the key").click()

    page.get_by_label(re.compile(r"^Grace period")).fill("30")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key deploy-bot rotated")
    new = page.get_by_label("Token").input_value()
    assert new != old
    # In the grace period both tokens work.
    assert console.whoami(new).status_code == 200
    assert console.whoami(old).status_code == 200
    page.get_by_role("link", name="Go to the key").click()
    assert new not in page.content()

    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    # Dismissed, the confirmation sends nothing: the key stays live.
    page.once("dialog", dismiss)
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("button", name="Revoke key")).to_be_visible()
    assert asked == ["Revoke key deploy-bot? Requests with it are refused at once."]
    assert console.whoami(new).status_code == 200

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_have_text("Revoked.")
    expect(page.locator("dt:has-text('State') + dd")).to_contain_text("revoked")
    assert len(asked) == 2
    refused = console.whoami(new)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_keys_list_pages_and_search(page: Page, console: Console) -> None:
    with httpx.Client(headers={"X-API-Key": console.admin_key}) as client:
        for number in range(60):
            made = client.post(
                f"{console.url}/authgate/v1/tokens", json={"name": f"bulk-{number:02d}"}
            )
            assert made.status_code == 201, made.text
    sign_in(page, console, OPERATOR, OPERATOR_PASSWORD)

    page.get_by_label("Search by name, id or hint").fill("bulk-")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("60 keys matching “bulk-”.")).to_be_visible()
    expect(page.locator("caption")).to_have_text("Keys, newest first (page 1 of 2)")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(50)
    # Newest first: the last made leads page one.
    expect(rows.first.locator("td").first).to_have_text("bulk-59")

    page.get_by_role("link", name="Next page").click()
    expect(page.locator("caption")).to_have_text("Keys, newest first (page 2 of 2)")
    expect(rows).to_have_count(10)
    expect(rows.last.locator("td").first).to_have_text("bulk-00")
    # The search is kept from page to page.
    expect(page.get_by_label("Search by name, id or hint")).to_have_value("bulk-")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect(page.locator("caption")).to_have_text("Keys, newest first (page 1 of 2)")

    page.get_by_label("Search by name, id or hint").fill("bulk-07")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 key matching “bulk-07”.")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(page.locator("nav.pages a")).to_have_count(0)

    page.get_by_label("Search by name, id or hint").fill("no-such-key-anywhere")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("0 keys matching “no-such-key-anywhere”.")).to_be_visible()
    expect(page.locator("table")).to_have_count(0)


def _tab_to(page: Page, element_id: str, limit: int = 400) -> None:
    """Press Tab until the element with this id has the focus."""
    for _ in range(limit):
        if page.evaluate("() => document.activeElement && document.activeElement.id") == (
            element_id
        ):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} never took the focus from Tab")


def test_sign_in_and_create_a_key_with_the_keyboard_alone(page: Page, console: Console) -> None:
    page.goto(console.page("login"))
    # The identity field takes the focus as the page opens.
    _tab_to(page, "identity", limit=1)
    page.keyboard.type(MEMBER)
    page.keyboard.press("Tab")
    page.keyboard.type(MEMBER_PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your keys")

    # The first Tab reaches the skip link, which moves the focus into the page.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    _tab_to(page, "name")
    page.keyboard.type("laptop-cli")
    page.keyboard.press("Tab")  # the first scope, "read"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # "write", left unticked
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "expires_in_days"
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Key laptop-cli created")
    token = page.get_by_label("Token").input_value()
    whoami = console.whoami(token)
    assert whoami.status_code == 200
    assert whoami.json()["scopes"] == ["read"]
    assert whoami.json()["owner_email"] == MEMBER
    expect(page.locator("dt:has-text('Expires') + dd")).not_to_have_text("—")


def _submit_login(page: Page, identity: str, password: str) -> int:
    page.get_by_label("Email, or the operator account").fill(identity)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    return posted.value.status


def test_a_failed_login_shows_its_error_and_keeps_the_form(page: Page, console: Console) -> None:
    page.goto(console.page("login"))
    assert _submit_login(page, MEMBER, "not-the-password-at-all") == 401
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    # The email stays, the password does not; the error is tied to the field.
    expect(page.get_by_label("Email, or the operator account")).to_have_value(MEMBER)
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Email, or the operator account")).to_have_attribute(
        "aria-describedby", "login-error"
    )
    # Still signed out.
    page.goto(console.page("keys"))
    expect(page).to_have_url(re.compile(r"/authgate/console/login"))


def test_too_many_failures_lock_the_account_out(page: Page, console: Console) -> None:
    page.goto(console.page("login"))
    statuses = [_submit_login(page, LOCKED, f"wrong-password-{n}") for n in range(LOGIN_LIMIT)]
    assert statuses == [401] * LOGIN_LIMIT
    # Locked: even the right password is refused, and the page says why.
    assert _submit_login(page, LOCKED, LOCKED_PASSWORD) == 429
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(re.compile("too many", re.IGNORECASE))
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    # Another account is not locked by it.
    assert _submit_login(page, MEMBER, MEMBER_PASSWORD) == 303
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_member_sees_only_their_keys_and_no_admin_pages(page: Page, console: Console) -> None:
    service = console.service_key("operator-service-key")
    own = httpx.post(
        f"{console.url}/authgate/v1/tokens",
        json={"name": "member-own-key", "email": MEMBER, "password": MEMBER_PASSWORD},
    )
    assert own.status_code == 201, own.text

    sign_in(page, console, MEMBER, MEMBER_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your keys")
    names = page.locator("tbody tr td:first-child").all_inner_texts()
    assert "member-own-key" in names
    assert "operator-service-key" not in names
    assert service["id"] not in page.content()
    # Searching does not reach past their own keys either.
    page.get_by_label("Search by name, id or hint").fill("operator-service")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("0 keys matching “operator-service”.")).to_be_visible()

    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    for tail in ("users", "audit"):
        answer = page.goto(console.page(tail))
        assert answer is not None and answer.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(page.get_by_role("alert")).to_be_visible()
    # Another's key is missing to them, as if it did not exist.
    answer = page.goto(console.page(f"keys/{service['id']}"))
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_every_page_passes_axe(page: Page, console: Console) -> None:
    found: dict[str, list[str]] = {}

    def audit(name: str) -> None:
        found[name] = [
            f"{v['id']}: {[node['target'] for node in v['nodes']]}" for v in axe_violations(page)
        ]

    page.goto(console.page("login"))
    audit("login")
    _submit_login(page, "nobody@example.com", "not-a-password-at-all")
    audit("login failed")

    sign_in(page, console, OPERATOR, OPERATOR_PASSWORD)
    token = create_key_in_console(page, console, "axe-key", ["read"])
    audit("key created")
    for _ in range(5):
        assert console.whoami(token).status_code == 200
    page.get_by_role("link", name="Go to the key").click()
    audit("key")
    page.goto(console.page("keys"))
    audit("keys")

    page.goto(console.page("users"))
    audit("users")
    page.get_by_role("link", name=MEMBER).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"User {MEMBER}")
    audit("user")

    page.goto(console.page("access-keys"))
    page.get_by_label("Name").fill("backup-job")
    page.get_by_label(re.compile(r"^Grants")).fill("backups=write")
    page.get_by_role("button", name="Create access key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access key backup-job created")
    audit("access key created")
    page.get_by_role("link", name="Go to the access key").click()
    audit("access key")
    page.goto(console.page("access-keys"))
    audit("access keys")

    page.goto(console.page("audit"))
    expect(page.locator("tbody tr").first).to_be_visible()
    audit("audit")
    page.goto(console.page("settings"))
    audit("settings")
    page.goto(console.page("sessions"))
    audit("sessions")
    answer = page.goto(console.page("keys/no-such-key"))
    assert answer is not None and answer.status == 404
    audit("error")

    assert found == {name: [] for name in found}
