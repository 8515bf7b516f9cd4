"""``authgate serve`` on a data folder that cannot take writes: a read-only file system or
a full disk is named as such at start-up (exit 2), not "the store cannot be reached;
check that the database is running".

Both mount a small tmpfs of their own (root only); where mounting is not allowed the
tests are skipped, never counted as passing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.foundation.helpers import run_authgate
from tests.support import free_port

MISLEADING = "check that the database is running"


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of this test's own, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.getuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = _mount("-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=False)


def _initialised(folder: Path) -> Path:
    """A data folder with its store, as a first start leaves it."""
    data = folder / "data"
    made = run_authgate("--data-dir", str(data), "keys", "list")
    assert made.returncode == 0, made.stderr
    assert (data / "authgate.db").exists()
    return data


def _serve(data: Path) -> tuple[int, str]:
    result = run_authgate("serve", "--port", str(free_port()), "--data-dir", str(data))
    return result.returncode, result.stdout + result.stderr


def test_a_read_only_data_folder_is_named_at_start_up(small_disk: Path) -> None:
    data = _initialised(small_disk)
    remounted = _mount("-o", "remount,ro", str(small_disk))
    assert remounted.returncode == 0, remounted.stderr

    code, output = _serve(data)

    assert code == 2, output
    assert "Read-only file system" in output
    assert str(data) in output
    assert MISLEADING not in output
    assert "Traceback" not in output


def test_a_full_disk_is_named_at_start_up(small_disk: Path) -> None:
    data = _initialised(small_disk)
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass  # the disk is full now
    code, output = _serve(data)

    assert code == 2, output
    assert "No space left on device" in output
    assert str(data) in output
    assert MISLEADING not in output
    assert "Traceback" not in output
