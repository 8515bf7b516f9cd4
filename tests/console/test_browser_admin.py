"""The console's admin pages in a real browser against a real ``authgate serve``: users,
their keys and sessions, access keys, the audit log, settings redaction, session expiry,
the session cookie over TLS and plain HTTP, the localhost bypass and cross-site forms.

The browser runs as root here, as authgate does, so a server with the default bypass
opens its console without a login; the servers that exercise logins turn the bypass off.
"""

from __future__ import annotations

import http.server
import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page

from tests.console.browser import axe_violations, browser
from tests.foundation.helpers import AUTHGATE, clean_env, run_authgate, serve_process
from tests.support import free_port

CONSOLE = "/authgate/console"
API = "/authgate/v1"
OPERATOR = "admin"
OPERATOR_PASSWORD = "operator-console-pass"
SECRET_URL = "redis://:s3cret@127.0.0.1:6399/0"
# Four servers start side by side on a machine that may be busy: each gets this long.
STARTUP = 180


@dataclass(frozen=True)
class Server:
    url: str
    data: Path
    admin_key: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + API, headers={"X-API-Key": self.admin_key}, verify=False
        )


def _admin_key(data: Path) -> str:
    done = run_authgate("--data-dir", str(data), "admin-key")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def _serve(workdir: Path, **extra: str) -> Iterator[Server]:
    data = workdir / "data"
    env = clean_env(AUTHGATE_DATA_DIR=str(data), **extra)
    with serve_process(workdir, free_port(), env=env, startup_seconds=STARTUP) as served:
        yield Server(served.url, data, _admin_key(data))


@contextmanager
def _serve_tls(workdir: Path) -> Iterator[Server]:
    """``serve --tls on`` on 127.0.0.1 with its self-signed certificate and the default
    (on) localhost bypass."""
    data = workdir / "data"
    no_tools = workdir / "bin"  # no mkcert nor tailscale: the self-signed rung
    no_tools.mkdir(parents=True)
    port = free_port()
    log = workdir / "serve.err"
    env = clean_env(PATH=str(no_tools), AUTHGATE_PASSWORD=OPERATOR_PASSWORD)
    with log.open("wb") as err:
        process = subprocess.Popen(
            [AUTHGATE, "serve", "--host", "127.0.0.1", "--port", str(port), "--tls", "on",
             "--data-dir", str(data)],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}{API}/health", verify=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer: {log.read_text()}")
            time.sleep(0.1)
        yield Server(url, data, _admin_key(data))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _login_env(**extra: str) -> dict[str, str]:
    return {"AUTHGATE_LOCALHOST_BYPASS": "off", "AUTHGATE_PASSWORD": OPERATOR_PASSWORD, **extra}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as launched:
        yield launched


@dataclass(frozen=True)
class Servers:
    main: Server  # logins needed, token_days_min pinned by the environment
    idle: Server  # sessions end after two idle seconds
    busy: Server  # sessions end three seconds after their login
    tls: Server  # TLS, default bypass


def _entered(make: Callable[[], AbstractContextManager[Server]]) -> tuple[Any, Server]:
    manager = make()
    return manager, manager.__enter__()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Every server of the module, started side by side: each takes seconds to start."""
    # Folders made here, one after the other: pytest's temporary-folder factory is not
    # safe to call from several threads at once.
    folder = {name: tmp_path_factory.mktemp(name) for name in ("main", "idle", "busy", "tls")}
    makers: dict[str, Callable[[], AbstractContextManager[Server]]] = {
        "main": lambda: _serve(folder["main"], **_login_env(AUTHGATE_TOKEN_DAYS_MIN="2")),
        "idle": lambda: _serve(
            folder["idle"], **_login_env(AUTHGATE_CONSOLE_SESSION_IDLE_SECONDS="2")
        ),
        "busy": lambda: _serve(folder["busy"], **_login_env(AUTHGATE_CONSOLE_SESSION_SECONDS="3")),
        "tls": lambda: _serve_tls(folder["tls"]),
    }
    with ThreadPoolExecutor(len(makers)) as pool, ExitStack() as stack:
        futures = {name: pool.submit(_entered, make) for name, make in makers.items()}
        started: dict[str, Server] = {}
        failure: BaseException | None = None
        for name, future in futures.items():
            try:
                manager, server = future.result()
            except BaseException as error:
                failure = failure or error
                continue
            stack.push(manager.__exit__)
            started[name] = server
        if failure is not None:
            raise failure
        yield Servers(**started)


@pytest.fixture(scope="module")
def main(servers: Servers) -> Server:
    return servers.main


@pytest.fixture(scope="module")
def tls(servers: Servers) -> Server:
    return servers.tls


@pytest.fixture
def context(chromium: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Makes browser contexts (each its own cookie jar), closed after the test."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        made.append(chromium.new_context(ignore_https_errors=True))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _submit(page: Page, button: Locator) -> None:
    with page.expect_navigation():
        button.click()


def _confirmed(page: Page, button: Locator) -> None:
    page.once("dialog", lambda dialog: dialog.accept())
    _submit(page, button)


def _sign_in(context: BrowserContext, server: Server, identity: str, password: str) -> Page:
    page = context.new_page()
    page.goto(f"{server.url}{CONSOLE}/login")
    page.fill("#identity", identity)
    page.fill("#password", password)
    _submit(page, page.get_by_role("button", name="Sign in"))
    return page


def _on_login_page(page: Page) -> bool:
    return page.url.split("?")[0].endswith(f"{CONSOLE}/login") and (
        page.get_by_role("heading", name="Sign in").is_visible()
    )


def _operator(context: BrowserContext, server: Server) -> Page:
    page = _sign_in(context, server, OPERATOR, OPERATOR_PASSWORD)
    assert page.url.endswith(f"{CONSOLE}/keys"), page.url
    return page


def _notice(page: Page) -> str:
    return page.locator("p.notice").inner_text()


def _detail(page: Page, term: str) -> str:
    return page.locator(f"dt:text-is('{term}') + dd").inner_text()


def _api_login(server: Server, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}{API}/tokens",
        json={"name": "cli", "email": email, "password": password},
        verify=False,
    )


def _add_user(server: Server, email: str, password: str, role: str = "member") -> str:
    with server.api() as api:
        made = api.post("/users", json={"email": email, "password": password, "role": role})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_users_page_adds_promotes_resets_disables_and_enables(
    main: Server, context: Callable[[], BrowserContext]
) -> None:
    admin = _operator(context(), main)
    admin.goto(f"{main.url}{CONSOLE}/users")
    admin.fill("#email", "dana@example.com")
    admin.fill("#new-password", "dana-first-password")
    assert admin.locator("#role").input_value() == "member"
    _submit(admin, admin.get_by_role("button", name="Add user"))
    assert _notice(admin) == "User added."
    assert _detail(admin, "Role") == "member"
    assert axe_violations(admin) == []

    admin.select_option("#role", "admin")
    _submit(admin, admin.get_by_role("button", name="Change role"))
    assert _notice(admin) == "Role changed."
    assert _detail(admin, "Role") == "admin"

    admin.fill("#reset-password", "dana-second-password")
    _submit(admin, admin.get_by_role("button", name="Reset password"))
    assert _notice(admin) == "Password reset."
    assert _api_login(main, "dana@example.com", "dana-first-password").status_code == 401
    stale = _sign_in(context(), main, "dana@example.com", "dana-first-password")
    assert _on_login_page(stale) and stale.locator("#login-error").is_visible()
    created = _api_login(main, "dana@example.com", "dana-second-password")
    assert created.status_code == 201, created.text
    api_key = {"X-API-Key": created.json()["token"]}
    assert httpx.get(f"{main.url}{API}/tokens", headers=api_key).status_code == 200
    dana = _sign_in(context(), main, "dana@example.com", "dana-second-password")
    assert dana.url.endswith(f"{CONSOLE}/keys")
    assert dana.locator(".who span").inner_text() == "dana@example.com"

    _confirmed(admin, admin.get_by_role("button", name="Disable user"))
    assert _notice(admin).startswith("User disabled")
    assert _detail(admin, "State") == "disabled"
    dana.reload()
    assert _on_login_page(dana)
    assert httpx.get(f"{main.url}{API}/tokens", headers=api_key).status_code == 401

    _submit(admin, admin.get_by_role("button", name="Enable user"))
    assert _notice(admin) == "User enabled."
    assert _detail(admin, "State") == "active"
    admin.goto(f"{main.url}{CONSOLE}/users")
    row = admin.locator("tr", has=admin.get_by_role("link", name="dana@example.com"))
    assert row.locator("td").all_inner_texts()[1:3] == ["admin", "active"]
    assert _api_login(main, "dana@example.com", "dana-second-password").status_code == 201


def test_user_page_lists_tokens_and_ends_a_session(
    main: Server, context: Callable[[], BrowserContext]
) -> None:
    user_id = _add_user(main, "eli@example.com", "eli-long-password")
    login = httpx.post(
        f"{main.url}{API}/tokens",
        json={"name": "eli-laptop", "email": "eli@example.com", "password": "eli-long-password"},
    )
    assert login.status_code == 201, login.text
    eli = _sign_in(context(), main, "eli@example.com", "eli-long-password")
    assert eli.url.endswith(f"{CONSOLE}/keys")

    admin = _operator(context(), main)
    admin.goto(f"{main.url}{CONSOLE}/users/{user_id}")
    tokens = admin.get_by_role("table", name="Keys of eli@example.com")
    names = tokens.locator("tbody tr td:first-child").all_inner_texts()
    assert names == ["eli-laptop"]
    assert tokens.locator("tbody tr td:last-child").inner_text() == "live"
    sessions = admin.get_by_role("table", name="Live console sessions of eli@example.com")
    assert sessions.locator("tbody tr").count() == 1

    _submit(admin, sessions.get_by_role("button", name="End"))
    assert _notice(admin) == "The session has ended."
    assert admin.url.split("?")[0].endswith(f"{CONSOLE}/users/{user_id}")
    assert admin.get_by_text("No live sessions.").is_visible()
    eli.reload()
    assert _on_login_page(eli)


def test_access_keys_create_grant_remove_and_revoke(
    main: Server, context: Callable[[], BrowserContext]
) -> None:
    admin = _operator(context(), main)
    admin.goto(f"{main.url}{CONSOLE}/access-keys")
    admin.fill("#name", "backup-job")
    admin.fill("#grants", "photos=read\nbackups-*=write")
    _submit(admin, admin.get_by_role("button", name="Create access key"))
    secret = admin.locator("#secret").input_value()
    access_key_id = admin.locator("dt:text-is('Access key id') + dd code").inner_text()
    assert len(secret) >= 30 and access_key_id

    _submit(admin, admin.get_by_role("link", name="Go to the access key"))
    assert secret not in admin.content()
    admin.fill("#bucket", "logs")
    admin.select_option("#permission", "admin")
    _submit(admin, admin.get_by_role("button", name="Save grant"))
    assert _notice(admin) == "Grant saved."
    _submit(admin, admin.get_by_role("button", name="Remove grant on photos"))
    assert _notice(admin) == "Grant removed."
    grants = admin.get_by_role("table", name=f"Grants of {access_key_id}")
    rows = [row.locator("td").all_inner_texts()[:2] for row in grants.locator("tbody tr").all()]
    assert rows == [["backups-*", "write"], ["logs", "admin"]]
    assert axe_violations(admin) == []
    _confirmed(admin, admin.get_by_role("button", name="Revoke access key"))
    assert _notice(admin) == "Revoked."
    assert _detail(admin, "State").startswith("revoked")

    with main.api() as api:
        listed = api.get("/access-keys")
    assert listed.status_code == 200
    [found] = [key for key in listed.json() if key["access_key_id"] == access_key_id]
    assert found["name"] == "backup-job"
    assert found["grants"] == {"backups-*": "write", "logs": "admin"}
    assert found["revoked"] is True and found["active"] is False
    assert secret not in listed.text


def _audit_rows(page: Page) -> list[list[str]]:
    """Each row of the audit table as (actor, action, target)."""
    rows = page.locator("table tbody tr").all()
    return [row.locator("td").all_inner_texts()[1:4] for row in rows]


def test_audit_page_filters_and_pages(main: Server, context: Callable[[], BrowserContext]) -> None:
    email = "auditor@example.com"
    _add_user(main, email, "auditor-long-password", role="admin")
    login = _api_login(main, email, "auditor-long-password")
    assert login.status_code == 201, login.text
    theirs = httpx.Client(base_url=main.url + API, headers={"X-API-Key": login.json()["token"]})
    batches: dict[str, list[str]] = {}
    with theirs:
        for batch, size in (("a", 30), ("b", 10), ("c", 20)):
            for number in range(size):
                made = theirs.post("/tokens", json={"name": f"audit-{batch}-{number}"})
                assert made.status_code == 201, made.text
                batches.setdefault(batch, []).append(made.json()["id"])
    made_ids = batches["a"] + batches["b"] + batches["c"]
    revoked = batches["b"][3]
    with main.api() as api:
        assert api.delete(f"/tokens/{revoked}").status_code in {200, 204}
        first_b = api.get("/audit", params={"key": batches["b"][0]}).json()
        first_c = api.get("/audit", params={"key": batches["c"][0]}).json()
    since, until = first_b["events"][0]["at"], first_c["events"][0]["at"]

    admin = _operator(context(), main)
    admin.goto(f"{main.url}{CONSOLE}/audit")
    admin.fill("#actor", email)
    admin.fill("#action", "key.create")
    _submit(admin, admin.get_by_role("button", name="Filter"))
    newest_first = list(reversed(made_ids))
    shown = _audit_rows(admin)
    assert shown == [[email, "key.create", key_id] for key_id in newest_first[:50]]
    assert axe_violations(admin) == []
    assert admin.get_by_role("link", name="Newer entries").count() == 0
    _submit(admin, admin.get_by_role("link", name="Older entries"))
    assert admin.locator("#actor").input_value() == email
    page_two = [row[2] for row in _audit_rows(admin)]
    # Past the keys: the user's own login token, created first of all.
    assert page_two[: len(newest_first) - 50] == newest_first[50:]
    assert admin.get_by_role("link", name="Older entries").count() == 0
    assert admin.get_by_role("link", name="Newer entries").count() == 1

    admin.fill("#actor", "")
    admin.fill("#action", "")
    admin.fill("#key", revoked)
    _submit(admin, admin.get_by_role("button", name="Filter"))
    assert [row[1:] for row in _audit_rows(admin)] == [
        ["key.revoke", revoked],
        ["key.create", revoked],
    ]
    assert _audit_rows(admin)[1][0] == email

    window = {"actor": email, "action": "key.create", "since": since, "until": until}
    admin.goto(f"{main.url}{CONSOLE}/audit?{urlencode(window)}")
    assert [row[2] for row in _audit_rows(admin)] == list(reversed(batches["b"]))


def _setting(server: Server, name: str) -> dict[str, Any]:
    with server.api() as api:
        listed = api.get("/settings")
    assert listed.status_code == 200
    [found] = [view for view in listed.json() if view["name"] == name]
    return dict(found)


def _stored(server: Server, name: str) -> Any:
    with sqlite3.connect(server.data / "authgate.db") as db:
        row = db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    # The column's JSON text: SQLite's numeric affinity hands a number back unparsed.
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def test_settings_form_keeps_a_redacted_secret_and_shows_pinned_settings(
    main: Server, context: Callable[[], BrowserContext]
) -> None:
    with main.api() as api:
        patched = api.patch("/settings", json={"redis_url": SECRET_URL})
    assert patched.status_code == 200, patched.text
    assert "s3cret" not in patched.text

    admin = _operator(context(), main)
    answer = admin.goto(f"{main.url}{CONSOLE}/settings")
    assert answer is not None and "s3cret" not in answer.text()
    assert admin.locator("#setting-redis_url").input_value() == "********"
    assert "s3cret" not in admin.content()
    pinned = admin.locator("#setting-token_days_min")
    assert pinned.input_value() == "2" and pinned.get_attribute("readonly") is not None
    assert "Source: environment" in admin.locator("#token_days_min-about").inner_text()
    assert axe_violations(admin) == []

    admin.fill("#setting-token_days_max", "45")
    _submit(admin, admin.get_by_role("button", name="Save settings"))
    assert _notice(admin).startswith("Settings saved.")
    assert "s3cret" not in admin.content()
    assert _setting(main, "token_days_max")["saved"] == 45
    kept = _setting(main, "redis_url")
    assert kept["saved"] == "********" and kept["secret"] is True
    assert _stored(main, "redis_url") == SECRET_URL

    admin.fill("#setting-redis_url", "")
    _submit(admin, admin.get_by_role("button", name="Save settings"))
    assert _notice(admin).startswith("Settings saved.")
    assert _setting(main, "redis_url")["saved"] is None
    assert _stored(main, "redis_url") is None
    assert _stored(main, "token_days_max") == 45


def test_an_idle_session_ends(servers: Servers, context: Callable[[], BrowserContext]) -> None:
    page = _operator(context(), servers.idle)
    page.reload()
    assert page.url.endswith(f"{CONSOLE}/keys")
    time.sleep(3)
    page.reload()
    assert _on_login_page(page)


def test_a_busy_session_ends_at_its_lifetime(
    servers: Servers, context: Callable[[], BrowserContext]
) -> None:
    page = _operator(context(), servers.busy)
    loads = 0
    deadline = time.monotonic() + 30
    # Never idle for long (the idle limit is its default of half an hour): only the
    # absolute lifetime can end it.
    while not _on_login_page(page) and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
        loads += 1
    assert _on_login_page(page)
    assert loads > 1


def _session_cookie(context: BrowserContext) -> dict[str, Any]:
    cookies = [cookie for cookie in context.cookies() if "session" in cookie["name"]]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


def test_session_cookie_over_tls_is_host_prefixed_and_secure(
    tls: Server, context: Callable[[], BrowserContext]
) -> None:
    browsing = context()
    page = _sign_in(browsing, tls, OPERATOR, OPERATOR_PASSWORD)
    assert page.url.endswith(f"{CONSOLE}/keys")
    cookie = _session_cookie(browsing)
    assert cookie["name"] == "__Host-authgate_session"
    assert cookie["secure"] is True and cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert cookie["domain"] == "127.0.0.1"


def test_session_cookie_over_plain_http_is_not_secure(
    main: Server, context: Callable[[], BrowserContext]
) -> None:
    browsing = context()
    _operator(browsing, main)
    cookie = _session_cookie(browsing)
    assert cookie["name"] == "authgate_session"
    assert cookie["secure"] is False and cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"


def test_local_bypass_opens_the_console_but_not_for_a_rebound_name(
    tls: Server, context: Callable[[], BrowserContext]
) -> None:
    page = context().new_page()
    page.goto(f"{tls.url}{CONSOLE}/")
    assert page.url.endswith(f"{CONSOLE}/keys")
    assert (
        page.get_by_role("complementary", name="Login")
        .inner_text()
        .startswith("Opened without a login")
    )
    assert page.locator(".who span").inner_text() == "this machine (no login needed)"

    rebound = httpx.get(
        f"{tls.url}{CONSOLE}/keys", headers={"Host": "rebind.example"}, verify=False
    )
    assert rebound.status_code == 303
    assert rebound.headers["location"].split("?")[0].endswith(f"{CONSOLE}/login")


FORGED = "forged-from-elsewhere"


@pytest.fixture(scope="module")
def attacker(main: Server) -> Iterator[int]:
    """Another origin's page: a form that posts itself to the console at once."""
    page = f"""<!doctype html><html lang="en"><head><title>Win a prize</title></head><body>
<form method="post" action="{main.url}{CONSOLE}/keys">
<input name="name" value="{FORGED}"><input name="csrf" value="guessed"></form>
<script>document.forms[0].submit()</script></body></html>""".encode()

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _key_names(server: Server) -> list[str]:
    with server.api() as api:
        listed = api.get("/tokens", params={"all": "true"})
    assert listed.status_code == 200, listed.text
    return [key["name"] for key in listed.json()]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_another_origins_form_creates_no_key(
    main: Server, attacker: int, context: Callable[[], BrowserContext], host: str
) -> None:
    victim = _operator(context(), main)
    before = _key_names(main)
    with victim.expect_response(lambda answer: answer.request.method == "POST") as posted:
        victim.goto(f"http://{host}:{attacker}/")
    assert posted.value.status in {401, 403}
    assert posted.value.url == f"{main.url}{CONSOLE}/keys"
    after = _key_names(main)
    assert len(after) == len(before) and FORGED not in after
