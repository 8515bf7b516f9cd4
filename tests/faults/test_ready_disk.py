"""A full disk under a running server: /ready says so, /health stays 200, and it recovers.

The data folder lives on a small tmpfs of the test's own (mounting needs root, as the
test machines run), filled with a file until the kernel says ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.support import live_server

V1 = "/authgate/v1"
CHUNK = b"\0" * (64 * 1024)
SIZE_MB = 8


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs of the test's own needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, timeout=30)


def fill(folder: Path) -> Path:
    """Write until the disk is full; at most the disk's size, so the loop is bounded."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        for _ in range(SIZE_MB * 1024 * 1024 // len(CHUNK) + 1):
            try:
                out.write(CHUNK)
                out.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler
    raise AssertionError("the disk never filled")


def test_a_full_disk_is_not_ready_while_health_stays_200(small_disk: Path) -> None:
    settings = load_settings(
        data_dir=small_disk / "data",
        localhost_bypass="off",
        access_log=False,
        ready_min_free_bytes=1024 * 1024,
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        with live_server(build_root_app(runtime)) as url:
            assert httpx.get(url + f"{V1}/ready", timeout=5).status_code == 200
            filler = fill(small_disk)
            ready = httpx.get(url + f"{V1}/ready", timeout=5)
            assert ready.status_code == 503
            body = ready.json()
            assert body["code"] == "not_ready"
            assert "disk" in [problem["dependency"] for problem in body["failing"]]
            assert httpx.get(url + f"{V1}/health", timeout=5).status_code == 200

            filler.unlink()
            assert httpx.get(url + f"{V1}/ready", timeout=5).status_code == 200
    finally:
        runtime.close()
