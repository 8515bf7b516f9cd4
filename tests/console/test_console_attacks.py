"""The console attacked as an attacker would, against a real ``authgate serve``: forged
and cross-site posts, forms read two ways, open redirects, session fixation, sessions
that outlive a logout or a disabled user, DNS rebinding onto the localhost bypass, and
answers missing their protective headers. Each refusal is checked in the store too:
nothing was created, the session did end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from authgate.credentials.tokens import digest
from tests.console.attack import (
    CONSOLE,
    OPERATOR,
    OPERATOR_PASSWORD,
    USER_PASSWORD,
    Served,
    browser,
    csrf_of,
    login,
    serve,
    signed_in,
)
from tests.foundation.helpers import raw_request

SESSION = "authgate_session"
CROSS_SITE = "This request came from another"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Every login of this module comes from 127.0.0.1: the per-address limit is raised so
    # that only the per-account one is under test.
    with serve(
        tmp_path_factory.mktemp("console-attacks"),
        AUTHGATE_LOGIN_ADDRESS_RATE_LIMIT="1000/15 minutes",
    ) as running:
        yield running


def keys_named(served: Served, name: str) -> list[dict[str, object]]:
    return served.rows("api_keys", name=name)


def session_row(served: Served, token: str) -> dict[str, object]:
    found = served.rows("sessions", digest=digest(token))
    assert len(found) == 1, found
    return found[0]


def is_login_redirect(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith(
        f"{CONSOLE}/login"
    )


def error_text(page: httpx.Response) -> str:
    found = re.search(r'id="login-error">([^<]*)<', page.text)
    assert found is not None, page.text
    return found.group(1)


# -- forged and cross-site posts ---------------------------------------------------------


def test_a_post_with_the_right_token_creates_a_key(served: Served) -> None:
    """The control: what the refusals below refuse works when it is genuine."""
    client, csrf = signed_in(served)
    with closing(client):
        made = client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": "genuine-post"})
    assert made.status_code == 200, made.text
    assert len(keys_named(served, "genuine-post")) == 1


def _forged(served: Served, client: httpx.Client, form: dict[str, str], name: str,
            **headers: str) -> None:  # fmt: skip
    refused = client.post(f"{CONSOLE}/keys", data={**form, "name": name}, headers=headers)
    assert refused.status_code == 403, refused.text
    assert keys_named(served, name) == []


def test_a_post_without_a_form_token_is_refused(served: Served) -> None:
    client, _ = signed_in(served)
    with closing(client):
        _forged(served, client, {}, "no-token")
        _forged(served, client, {"csrf": ""}, "empty-token")
        _forged(served, client, {"csrf": "0" * 64}, "made-up-token")


def test_another_sessions_form_token_is_refused(served: Served) -> None:
    mine, _ = signed_in(served)
    theirs, their_csrf = signed_in(served)
    with closing(mine), closing(theirs):
        _forged(served, mine, {"csrf": their_csrf}, "their-token")


def test_the_login_pages_token_does_not_carry_over_to_the_session(served: Served) -> None:
    client = browser(served)
    with closing(client):
        before = csrf_of(client.get(f"{CONSOLE}/login"))
        done = client.post(f"{CONSOLE}/login", data={
            "csrf": before, "identity": OPERATOR, "password": OPERATOR_PASSWORD})  # fmt: skip
        assert done.status_code == 303
        _forged(served, client, {"csrf": before}, "browser-cookie-token")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_post_from_another_site_is_refused(served: Served, headers: dict[str, str]) -> None:
    client, csrf = signed_in(served)
    name = f"cross-{abs(hash(tuple(headers.items())))}"
    with closing(client):
        refused = client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": name}, headers=headers)
    assert refused.status_code == 403, refused.text
    assert CROSS_SITE in refused.text
    assert keys_named(served, name) == []


def test_a_login_posted_from_another_site_is_refused(served: Served) -> None:
    with browser(served) as client:
        csrf = csrf_of(client.get(f"{CONSOLE}/login"))
        refused = client.post(
            f"{CONSOLE}/login",
            data={"csrf": csrf, "identity": OPERATOR, "password": OPERATOR_PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
    assert refused.status_code == 403
    assert SESSION not in refused.cookies


# -- forms read one way only ---------------------------------------------------------------


def _post_raw(client: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    return client.post(f"{CONSOLE}/keys", content=body, headers={"Content-Type": content_type})


FORM = "application/x-www-form-urlencoded"


def test_a_repeated_field_is_refused(served: Served) -> None:
    client, csrf = signed_in(served)
    with closing(client):
        refused = _post_raw(client, f"csrf={csrf}&name=twice-a&name=twice-b".encode(), FORM)
        again = _post_raw(client, f"csrf={csrf}&csrf={csrf}&name=twice-c".encode(), FORM)
    assert refused.status_code == 400, refused.text
    assert again.status_code == 400, again.text
    for name in ("twice-a", "twice-b", "twice-c"):
        assert keys_named(served, name) == []


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=xyz", "application/json", "text/plain", ""],
)
def test_a_form_not_url_encoded_is_refused(served: Served, content_type: str) -> None:
    client, csrf = signed_in(served)
    if content_type.startswith("multipart"):
        body = (
            f'--xyz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
            '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nmultipart-key\r\n'
            "--xyz--\r\n"
        ).encode()
    elif content_type == "application/json":
        body = f'{{"csrf": "{csrf}", "name": "multipart-key"}}'.encode()
    else:
        body = f"csrf={csrf}&name=multipart-key".encode()
    with closing(client):
        refused = _post_raw(client, body, content_type)
    assert refused.status_code == 415, refused.text
    assert keys_named(served, "multipart-key") == []


def test_a_form_over_the_body_cap_is_refused(served: Served) -> None:
    client, csrf = signed_in(served)
    with closing(client):
        refused = _post_raw(client, f"csrf={csrf}&name=huge-key&pad={'a' * 20_000}".encode(), FORM)
    assert refused.status_code == 413, refused.text
    assert keys_named(served, "huge-key") == []


@pytest.mark.parametrize(
    "name",
    [b"bad-%zz", b"bad-%f", b"bad-%ff%fe", b"bad-%c3%28", b"bad-\xc3\xa9", b"bad-%", b"bad-%%41"],
)
def test_a_form_that_cannot_be_read_is_400(served: Served, name: bytes) -> None:
    client, csrf = signed_in(served)
    with closing(client):
        refused = _post_raw(client, f"csrf={csrf}&name=".encode() + name, FORM)
    assert refused.status_code == 400, refused.text
    assert "csrf" not in refused.text.lower() or refused.status_code != 500
    assert [row["name"] for row in served.rows("api_keys") if str(row["name"]).startswith("bad-")
            ] == []  # fmt: skip


@pytest.mark.parametrize(
    "body", [b"&", b"=", b"csrf", b"&&&", b"a=1&", b"\x00=\x00", b"=" * 100, b"a=b=c"]
)
def test_odd_forms_are_never_a_500(served: Served, body: bytes) -> None:
    client, _ = signed_in(served)
    with closing(client):
        answered = _post_raw(client, body, FORM)
    assert answered.status_code in {400, 403}, answered.text


# -- signing in and out ---------------------------------------------------------------------


def _inside_console(location: str) -> bool:
    """Where a browser would go: under the console, on this site, with no segment that
    climbs out (browsers read ``%2e%2e`` as ``..``, and ``\\`` as ``/``)."""
    decoded = unquote(location.split("?", 1)[0])
    segments = decoded.replace("\\", "/").split("/")
    return (
        location.startswith(f"{CONSOLE}/")
        and "//" not in location
        and "\\" not in decoded
        and ".." not in segments
        and "." not in segments
        and not any(ord(char) < 0x21 for char in decoded)
    )


@pytest.mark.parametrize(
    "wanted",
    [
        "//evil.example",
        "https://evil.example",
        "/authgate/console/../../x",
        "/authgate/console/./../x",
        "/authgate/console/%2e%2e/%2e%2e/x",
        "/authgate/console/%2E%2E%2F%2E%2E%2Fx",
        "/authgate/console/..%2f..%2fx",
        "/authgate/console/%252e%252e/x",
        "/authgate/console/keys%3f/../../x",
        "/\\evil.example",
        "/authgate/console/\\..\\..\\x",
        "/authgate/console//evil.example",
        "%2F%2Fevil.example",
        "/authgate/console/%0d%0aLocation:%20https://evil.example",
        "/authgate/consolex",
        "javascript:alert(1)",
    ],
)
def test_next_never_leaves_the_console(served: Served, wanted: str) -> None:
    with browser(served) as client:
        shown = client.get(f"{CONSOLE}/login", params={"next": wanted})
        hidden = re.search(r'name="next" value="([^"]*)"', shown.text)
        assert hidden is not None
        assert _inside_console(hidden.group(1).replace("&amp;", "&")), hidden.group(1)
        done = login(client, OPERATOR, OPERATOR_PASSWORD, next_page=wanted)
    assert done.status_code == 303, done.text
    assert _inside_console(done.headers["location"]), done.headers["location"]


def test_next_inside_the_console_is_kept(served: Served) -> None:
    with browser(served) as client:
        done = login(client, OPERATOR, OPERATOR_PASSWORD, next_page=f"{CONSOLE}/audit?page=2")
    assert done.headers["location"] == f"{CONSOLE}/audit?page=2"


def test_a_planted_session_is_not_the_one_after_login(served: Served) -> None:
    # The attacker signs in and plants their own session's cookie in the victim's browser.
    attacker, _ = signed_in(served)
    planted = attacker.cookies[SESSION]
    victim_email = "fixation@example.com"
    served.add_user(victim_email)
    with closing(attacker), browser(served) as victim:
        # Planted while the victim has the login form open (a browser that already holds
        # a live session is sent on from the login page instead).
        csrf = csrf_of(victim.get(f"{CONSOLE}/login"))
        victim.cookies.set(SESSION, planted, domain="127.0.0.1")
        done = victim.post(f"{CONSOLE}/login", data={
            "csrf": csrf, "identity": victim_email, "password": USER_PASSWORD})  # fmt: skip
        assert done.status_code == 303, done.text
        now = done.cookies[SESSION]
        assert now != planted
        assert session_row(served, planted)["revoked_at"] is not None
        assert session_row(served, now)["revoked_at"] is None
        # The attacker's copy is dead; the victim's session is theirs alone.
        assert is_login_redirect(attacker.get(f"{CONSOLE}/keys"))
        assert victim.get(f"{CONSOLE}/keys").status_code == 200


def test_a_made_up_session_cookie_is_replaced_at_login(served: Served) -> None:
    made_up = "x" * 43
    with browser(served) as client:
        client.cookies.set(SESSION, made_up)
        assert is_login_redirect(client.get(f"{CONSOLE}/keys"))
        done = login(client, OPERATOR, OPERATOR_PASSWORD)
        assert done.cookies[SESSION] != made_up
    assert served.rows("sessions", digest=digest(made_up)) == []


def test_logout_ends_the_session_in_the_store(served: Served) -> None:
    client, csrf = signed_in(served)
    token = client.cookies[SESSION]
    with closing(client):
        out = client.post(f"{CONSOLE}/logout", data={"csrf": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == f"{CONSOLE}/login"
    assert session_row(served, token)["revoked_at"] is not None
    with browser(served, cookies={SESSION: token}) as replay:
        assert is_login_redirect(replay.get(f"{CONSOLE}/keys"))
        # Nor can the old cookie post, even with its old form token.
        refused = replay.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": "after-logout"})
    assert refused.status_code == 401
    assert keys_named(served, "after-logout") == []


def test_a_disabled_users_session_stops_at_once(served: Served) -> None:
    email = "disabled@example.com"
    user_id = served.add_user(email)
    client, csrf = signed_in(served, email, USER_PASSWORD)
    token = client.cookies[SESSION]
    with closing(client):
        disabled = served.api("PATCH", f"/users/{user_id}", json={"active": False})
        assert disabled.status_code == 200, disabled.text
        assert is_login_redirect(client.get(f"{CONSOLE}/keys"))
        refused = client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": "disabled-key"})
    assert refused.status_code == 401
    assert session_row(served, token)["revoked_at"] is not None
    assert keys_named(served, "disabled-key") == []


def test_a_wrong_password_reads_the_same_for_every_account(served: Served) -> None:
    served.add_user("wrong-password@example.com")
    answers = []
    for identity in (OPERATOR, "wrong-password@example.com", "nobody@example.com", "nobody"):
        with browser(served) as client:
            refused = login(client, identity, "not the password at all")
            assert SESSION not in refused.cookies
        answers.append((refused.status_code, error_text(refused)))
    assert {status for status, _ in answers} == {401}
    assert len({text for _, text in answers}) == 1, answers


def test_repeated_failures_lock_the_account_out(served: Served) -> None:
    email = "locked@example.com"
    served.add_user(email)
    statuses = []
    with browser(served) as client:
        for _ in range(5):
            statuses.append(login(client, email, "not the password at all").status_code)
        locked = login(client, email, "not the password at all")
        still = login(client, email, USER_PASSWORD)
    assert statuses == [401] * 5
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert still.status_code == 429
    assert SESSION not in still.cookies


def test_a_member_is_refused_the_admin_pages_and_their_forms(served: Served) -> None:
    email = "member-pages@example.com"
    served.add_user(email)
    client, csrf = signed_in(served, email, USER_PASSWORD)
    with closing(client):
        for page in ("access-keys", "settings"):
            shown = client.get(f"{CONSOLE}/{page}")
            assert shown.status_code == 403, (page, shown.text)
            assert "needs the admin role" in shown.text
        access_key = {"csrf": csrf, "name": "member-made", "grants": "x=write"}
        made = client.post(f"{CONSOLE}/access-keys", data=access_key)
        saved = client.post(f"{CONSOLE}/settings", data={"csrf": csrf, "token_days_max": "5"})
    for refused in (made, saved):
        assert refused.status_code == 403, refused.text
        assert "needs the admin role" in refused.text
    assert served.rows("access_keys", name="member-made") == []
    assert served.rows("settings", name="token_days_max") == []


# -- protective headers -----------------------------------------------------------------------


def _protected(response: httpx.Response, cache: str = "no-store") -> None:
    policy = response.headers.get("content-security-policy", "")
    assert policy and "unsafe-inline" not in policy, (response.url, response.headers)
    assert "frame-ancestors 'none'" in policy
    assert response.headers.get("x-frame-options") == "DENY", response.url
    assert response.headers.get("x-content-type-options") == "nosniff", response.url
    assert response.headers.get("cache-control") == cache, response.url


def test_every_console_answer_carries_the_protective_headers(served: Served) -> None:
    client, csrf = signed_in(served)
    with closing(client), browser(served) as anonymous:
        answers = [
            anonymous.get(f"{CONSOLE}/login"),
            anonymous.get(CONSOLE),
            anonymous.get(f"{CONSOLE}/"),
            anonymous.get(f"{CONSOLE}/keys"),  # the login redirect
            anonymous.post(f"{CONSOLE}/keys", data={"name": "x"}),  # 401 page
            anonymous.get(f"{CONSOLE}/no-such-page"),
            anonymous.get(f"{CONSOLE}/static/nothing.css"),
            anonymous.get(f"{CONSOLE}/logout"),  # 405
            client.get(f"{CONSOLE}/keys"),
            client.get(f"{CONSOLE}/keys/key_nothing"),  # 404 page
            client.get(f"{CONSOLE}/no-such-page"),
            client.post(f"{CONSOLE}/keys", data={"name": "x"}),  # 403 page
            client.post(
                f"{CONSOLE}/keys", content=b"{}", headers={"Content-Type": "application/json"}
            ),  # fmt: skip
            client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "expires_in_days": "y"}),
        ]
        for answer in answers:
            _protected(answer)
        for asset in ("console.css", "console.js"):
            found = anonymous.get(f"{CONSOLE}/static/{asset}")
            assert found.status_code == 200
            _protected(found, cache="no-cache")


@pytest.mark.parametrize(
    "path",
    [
        "static/..%2fconsole.css",
        "static/..%2f..%2fpages.py",
        "static/%2e%2e%2fpages.py",
        "static/console.css%00",
        "static/console.css%00.js",
        "static/CONSOLE.CSS",
        "static/.%2fconsole.css",
        "static/templates%2fbase.html",
        "static/",
    ],
)
def test_no_other_static_file_is_served(served: Served, path: str) -> None:
    answer = raw_request(
        served.url,
        f"GET {CONSOLE}/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
    )
    # An encoded '/' or NUL is refused before routing (400), like any path read two ways.
    assert answer.status in {400, 404}, (path, answer.status, answer.body[:200])
    assert b"{%" not in answer.body and b"import" not in answer.body


# -- the localhost bypass ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bypassed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The default bypass (``auto``) while listening on loopback alone: this test runs
    as root, so its own connections are local peers."""
    with serve(tmp_path_factory.mktemp("bypass"), "--host", "127.0.0.1",
               AUTHGATE_LOCALHOST_BYPASS="auto") as running:  # fmt: skip
        yield running


def _get(served: Served, *lines: str, path: str = "keys") -> int:
    request = "\r\n".join([f"GET {CONSOLE}/{path} HTTP/1.1", *lines, "Connection: close"])
    answer = raw_request(served.url, (request + "\r\n\r\n").encode())
    if answer.status == 303:
        assert (answer.header("location") or "").startswith(f"{CONSOLE}/login")
    return answer.status


def test_loopback_names_open_the_console(bypassed: Served) -> None:
    port = bypassed.url.rsplit(":", 1)[1]
    for host in ("localhost", f"localhost:{port}", "127.0.0.1", f"127.0.0.1:{port}",
                 f"LOCALHOST:{port}"):  # fmt: skip
        assert _get(bypassed, f"Host: {host}") == 200, host


@pytest.mark.parametrize(
    "host",
    ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "evil.example:80",
     "127.0.0.1.evil.example", "localhost.", "0x7f000001", "2130706433"],
)  # fmt: skip
def test_a_rebound_name_gets_the_login_redirect(bypassed: Served, host: str) -> None:
    assert _get(bypassed, f"Host: {host}") in {303, 400}, host


def test_a_forwarded_request_is_not_local(bypassed: Served) -> None:
    for header in ("X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9",
                   "X-Real-IP: 203.0.113.9"):  # fmt: skip
        assert _get(bypassed, "Host: localhost", header) == 303, header


def test_two_host_headers_are_refused(bypassed: Served) -> None:
    assert _get(bypassed, "Host: localhost", "Host: evil.example") == 400
    assert _get(bypassed, "Host: evil.example", "Host: localhost") == 400


def test_a_local_visitors_posts_still_need_the_form_token(bypassed: Served) -> None:
    with httpx.Client(base_url=bypassed.url, follow_redirects=False, timeout=30) as client:
        page = client.get(f"{CONSOLE}/keys")
        assert page.status_code == 200
        csrf = csrf_of(page)
        refused = client.post(f"{CONSOLE}/keys", data={"name": "local-forged"})
        cross = client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": "local-cross"},
                            headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
        made = client.post(f"{CONSOLE}/keys", data={"csrf": csrf, "name": "local-genuine"})
    assert refused.status_code == 403
    assert cross.status_code == 403
    assert made.status_code == 200
    assert keys_named(bypassed, "local-forged") == keys_named(bypassed, "local-cross") == []
    assert len(keys_named(bypassed, "local-genuine")) == 1


def test_ipv6_loopback_opens_the_console(tmp_path: Path) -> None:
    with serve(tmp_path, "--host", "::1", AUTHGATE_LOCALHOST_BYPASS="auto") as running:
        port = running.url.rsplit(":", 1)[1]
        url = running.url
        for host, expected in ((f"[::1]:{port}", 200), ("evil.example", 303)):
            request = f"GET {CONSOLE}/keys HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            assert raw_request(url, request.encode()).status == expected, host


# -- sessions in PostgreSQL ------------------------------------------------------------------


def test_sessions_live_and_end_in_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with serve(tmp_path, database_url=postgres_url) as running:
        client, csrf = signed_in(running)
        token = client.cookies[SESSION]
        with closing(client):
            row = session_row(running, token)
            assert row["revoked_at"] is None
            assert row["operator"] == OPERATOR
            assert client.post(f"{CONSOLE}/logout", data={"csrf": csrf}).status_code == 303
        assert session_row(running, token)["revoked_at"] is not None
        with browser(running, cookies={SESSION: token}) as replay:
            assert is_login_redirect(replay.get(f"{CONSOLE}/keys"))
