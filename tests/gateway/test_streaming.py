"""Large bodies stream through the gateway both ways without being held in memory.

The gateway runs in a process of its own; its peak resident memory (VmHWM in
/proc/PID/status) after a 200 MB transfer is compared with its size before. The bound is
generous (a third of the body): a gateway that buffered the body would exceed it by far,
while allocator noise and socket buffers stay well under it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import TOKEN
from tests.gateway.upstream import hwm_bytes, pattern, pattern_digest, rss_bytes
from tests.support import free_port, wait_until

BODY = 200 * 1024 * 1024
BOUND = BODY // 3
AUTH = {"x-api-key": TOKEN}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gateway_process(upstream_url: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.serve_gateway", upstream_url, str(port)],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/public/ping").status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_until(up, timeout=20), "gateway process did not start"
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def warm_up(url: str) -> None:
    # Fill the pools and caches a first transfer creates, so they are not counted as growth.
    body = b"w" * (8 * 1024 * 1024)
    assert httpx.post(f"{url}/upload", headers=AUTH, content=iter([body])).status_code == 200
    with httpx.stream("GET", f"{url}/download?size={len(body)}", headers=AUTH) as response:
        for _ in response.iter_raw():
            pass


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_streams_through(gateway_process: tuple[str, int], framing: str) -> None:
    url, pid = gateway_process
    warm_up(url)
    before = rss_bytes(pid)
    headers = dict(AUTH)
    if framing == "content-length":
        headers["content-length"] = str(BODY)
    response = httpx.put(f"{url}/upload", headers=headers, content=pattern(BODY), timeout=120)
    assert response.status_code == 200
    seen = response.json()
    assert seen["size"] == BODY
    assert seen["sha256"] == pattern_digest(BODY)
    if framing == "content-length":
        # S3 refuses uploads without a length: the client's framing is kept.
        assert seen["content_length"] == str(BODY)
    else:
        assert seen["transfer_encoding"] == "chunked"
    growth = hwm_bytes(pid) - before
    assert growth < BOUND, f"gateway grew by {growth / 2**20:.0f} MiB for a 200 MiB upload"


@pytest.mark.parametrize("length", ["yes", "no"])
def test_download_streams_through(gateway_process: tuple[str, int], length: str) -> None:
    url, pid = gateway_process
    warm_up(url)
    before = rss_bytes(pid)
    digest = hashlib.sha256()
    size = 0
    with httpx.stream(
        "GET", f"{url}/download?size={BODY}&length={length}", headers=AUTH, timeout=120
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == BODY
    assert digest.hexdigest() == pattern_digest(BODY)
    growth = hwm_bytes(pid) - before
    assert growth < BOUND, f"gateway grew by {growth / 2**20:.0f} MiB for a 200 MiB download"
