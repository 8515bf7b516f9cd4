"""A real browser (Debian's Chromium, driven by Playwright) submits the HTML form of
docs/s3.md, filled with the fields of the page's own boto3 snippet, through the gateway
to moto; and the gateway's memory stays flat while a 100 MB file streams through it."""

from __future__ import annotations

import contextlib
import html
import http.client
import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.s3.post_support import BUCKET, PostStack, post_stack, presigned_post

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3.md"
ENDPOINT = "https://s3.example.com:8443"
KEY_ID = "AKAGJ7Q2M4XWZ5NB3KTE"
SECRET = "wJ3k0yR6sV+f9QeT1uXb2Lm8Nc4Pd5Ag7Hh/ZiKo"
CHROMIUM = "/usr/bin/chromium"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="[^"]*">')


def snippet(name: str) -> str:
    match = re.search(rf"<!-- test: {name} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert match is not None, name
    return match.group(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostStack]:
    with post_stack(tmp_path_factory.mktemp("post-browser")) as built:
        yield built


def the_docs_post(stack: PostStack) -> dict[str, Any]:
    """``post`` as the page's boto3 snippet makes it, for the stack's writer."""
    code = snippet("s3-post-policy")
    assert code.count(ENDPOINT) == 1 and KEY_ID in code and SECRET in code
    code = code.replace(ENDPOINT, stack.url).replace(KEY_ID, stack.writer.access_key_id)
    code = code.replace(SECRET, stack.writer.secret).replace('"uploads"', repr(BUCKET))
    scope: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    post: dict[str, Any] = scope["post"]
    return post


def the_docs_form(post: dict[str, Any]) -> str:
    """The page's form with the snippet's url and fields in place of the examples."""
    form = snippet("s3-post-form")
    assert set(HIDDEN.findall(form)) == set(post["fields"]), "the doc's form has boto3's fields"
    form = form.replace(f'action="{ENDPOINT}/uploads"', f'action="{html.escape(post["url"])}"')

    def filled(match: re.Match[str]) -> str:
        value = html.escape(post["fields"][match.group(1)])
        return f'<input type="hidden" name="{match.group(1)}" value="{value}">'

    return f"<!doctype html><html><body>{HIDDEN.sub(filled, form)}</body></html>"


class _Page(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        return None


def serve_page(page: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("Page", (_Page,), {"page": page.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_chromium_uploads_the_docs_form_through_the_gateway(
    stack: PostStack, tmp_path: Path
) -> None:
    post = the_docs_post(stack)
    picture = tmp_path / "cat.png"
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    picture.write_bytes(content)
    server, page_url = serve_page(the_docs_form(post))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(page_url, timeout=30_000)
                page.set_input_files('input[name="file"]', str(picture))
                with page.expect_response(
                    lambda r: r.request.method == "POST", timeout=30_000
                ) as answer:
                    page.click('button[type="submit"]')
                assert answer.value.status == 204, answer.value.text()
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert stack.stored("photos/cat.png") == content
    head = stack.client(stack.admin, v4=True).head_object(Bucket=BUCKET, Key="photos/cat.png")
    assert head["ContentType"] == "image/png"


# -- memory ------------------------------------------------------------------------------

MB = 1024 * 1024
BLOCK = MB


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing for {pid}")


def stream_form(
    url: str, fields: dict[str, str], size: int, filename: str = "big.bin"
) -> tuple[int, bytes]:
    """Posts a form whose file is ``size`` bytes, made and sent block by block, with
    a Content-Length, as a browser does: the file is never whole in this process."""
    boundary = "----authgate-memory-test"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host = url.split("/")[2]
    path = "/" + url.split("/", 3)[3]
    connection = http.client.HTTPConnection(host, timeout=120)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + size + len(tail)))
        connection.endheaders()
        connection.send(head)
        block = bytes(range(256)) * (BLOCK // 256)
        sent = 0
        try:
            while sent < size:
                piece = block[: min(BLOCK, size - sent)]
                connection.send(piece)
                sent += len(piece)
            connection.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way: the answer is already waiting
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_100_mb_upload_streams_in_bounded_memory(stack: PostStack) -> None:
    pid = stack.serve.process.pid
    client = stack.client(stack.writer, v4=True)
    warm = presigned_post(client, "warm.bin")
    assert stream_form(warm["url"], warm["fields"], 64 * 1024)[0] == 204
    time.sleep(0.2)
    idle = _rss_kb(pid, "VmRSS")
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak from here on
    post = presigned_post(client, "big.bin", conditions=[["content-length-range", 1, 200 * MB]])
    status, body = stream_form(post["url"], post["fields"], 100 * MB)
    assert status == 204, body[:500]
    peak = _rss_kb(pid, "VmHWM")
    # Generous: the file is 100 MB; a gateway that held it would grow by at least that.
    assert (peak - idle) < 60 * 1024, f"gateway grew {(peak - idle) / 1024:.0f} MB"
    head = stack.client(stack.admin, v4=True).head_object(Bucket=BUCKET, Key="big.bin")
    assert head["ContentLength"] == 100 * MB


def test_a_file_past_its_range_is_refused_before_the_store_has_it(stack: PostStack) -> None:
    post = presigned_post(
        stack.client(stack.writer), "too-big.bin", conditions=[["content-length-range", 1, MB]]
    )
    status, body = stream_form(post["url"], post["fields"], 20 * MB)
    assert status == 400
    assert b"<Code>EntityTooLarge</Code>" in body
    assert stack.stored("too-big.bin") is None
