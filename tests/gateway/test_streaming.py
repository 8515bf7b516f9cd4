"""Large bodies stream through the gateway both ways without being held in memory.

The gateway is the real thing, ``authgate serve --upstream`` in a process of its own; its
peak resident memory (VmHWM in /proc/PID/status) after a 200 MB transfer is compared with
its size before. The bound is
generous (a third of the body): a gateway that buffered the body would exceed it by far,
while allocator noise and socket buffers stay well under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.serve_cli import ServedGateway, served_gateway
from tests.gateway.upstream import hwm_bytes, pattern, pattern_digest, rss_bytes

BODY = 200 * 1024 * 1024
BOUND = BODY // 3


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[ServedGateway]:
    with served_gateway(tmp_path_factory.mktemp("stream"), upstream_url) as served:
        yield served


def warm_up(url: str, auth: dict[str, str]) -> None:
    # Fill the pools and caches a first transfer creates, so they are not counted as growth.
    body = b"w" * (8 * 1024 * 1024)
    assert httpx.post(f"{url}/upload", headers=auth, content=iter([body])).status_code == 200
    with httpx.stream("GET", f"{url}/download?size={len(body)}", headers=auth) as response:
        for _ in response.iter_raw():
            pass


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_streams_through(gateway: ServedGateway, framing: str) -> None:
    url, pid, auth = gateway.url, gateway.process.process.pid, {"X-API-Key": gateway.token}
    warm_up(url, auth)
    before = rss_bytes(pid)
    headers = dict(auth)
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
def test_download_streams_through(gateway: ServedGateway, length: str) -> None:
    url, pid, auth = gateway.url, gateway.process.process.pid, {"X-API-Key": gateway.token}
    warm_up(url, auth)
    before = rss_bytes(pid)
    digest = hashlib.sha256()
    size = 0
    with httpx.stream(
        "GET", f"{url}/download?size={BODY}&length={length}", headers=auth, timeout=120
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == BODY
    assert digest.hexdigest() == pattern_digest(BODY)
    growth = hwm_bytes(pid) - before
    assert growth < BOUND, f"gateway grew by {growth / 2**20:.0f} MiB for a 200 MiB download"
