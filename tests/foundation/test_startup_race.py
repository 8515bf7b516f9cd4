"""Instances starting together on one fresh data folder: one makes the admin key and the
master key, the others read the winner's file; nobody dies of a ``FileExistsError``.

The creation step itself is raced 50 times by 8 processes held at a barrier; then 8 real
``authgate serve`` processes start at once on a fresh folder, a few times.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from authgate.credentials.bootstrap import load_or_create_admin_key
from authgate.credentials.tokens import digest
from authgate.masterkey import MasterKey
from authgate.store import open_store
from tests.foundation.helpers import AUTHGATE, clean_env
from tests.support import free_port

PROCESSES = 8
ROUNDS = 50
SERVE_ROUNDS = 2
# Eight servers importing everything at once on a shared 2-core machine take a while.
HEALTHY_WITHIN = 180.0

_fork = multiprocessing.get_context("fork")


def _race_admin_key(
    folders: list[Path], barrier: Any, results: Any, worker: int
) -> None:  # pragma: no cover - runs in the child processes
    for round_number, folder in enumerate(folders):
        barrier.wait(timeout=60)
        try:
            key = load_or_create_admin_key(folder / "admin.key", "ag")
            results.put((round_number, worker, "ok", key.digest, key.created))
        except BaseException as exc:  # report everything: the test must see it
            results.put((round_number, worker, "error", repr(exc), False))


def _race_master_key(
    folders: list[Path], barrier: Any, results: Any, worker: int
) -> None:  # pragma: no cover - runs in the child processes
    for round_number, folder in enumerate(folders):
        store = open_store(f"sqlite:///{folder / 'authgate.db'}")
        barrier.wait(timeout=60)
        try:
            master = MasterKey(folder / "master.key", store)
            token = master.encrypt(f"secret of worker {worker}")
            results.put((round_number, worker, "ok", token, False))
        except BaseException as exc:
            results.put((round_number, worker, "error", repr(exc), False))
        finally:
            store.close()


def _race(target: Any, folders: list[Path]) -> dict[int, list[tuple[int, str, str, bool]]]:
    """Run ``target`` in 8 processes over every folder; results by round."""
    barrier = _fork.Barrier(PROCESSES)
    results = _fork.Queue()
    workers = [
        _fork.Process(target=target, args=(folders, barrier, results, worker))
        for worker in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    by_round: dict[int, list[tuple[int, str, str, bool]]] = {}
    try:
        for _ in range(PROCESSES * len(folders)):
            round_number, worker, outcome, value, created = results.get(timeout=120)
            by_round.setdefault(round_number, []).append((worker, outcome, value, created))
    finally:
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    return by_round


def _fresh_folders(root: Path) -> list[Path]:
    folders = [root / f"round-{number}" for number in range(ROUNDS)]
    for folder in folders:
        folder.mkdir(mode=0o700, parents=True)
    return folders


def test_eight_processes_creating_the_admin_key_at_once_agree_on_one(tmp_path: Path) -> None:
    folders = _fresh_folders(tmp_path)
    by_round = _race(_race_admin_key, folders)

    assert sorted(by_round) == list(range(ROUNDS))
    for round_number, outcomes in by_round.items():
        errors = [value for _, outcome, value, _ in outcomes if outcome != "ok"]
        assert errors == [], f"round {round_number}: {errors}"
        on_disk = digest((folders[round_number] / "admin.key").read_text().strip())
        assert {value for _, _, value, _ in outcomes} == {on_disk}
        assert sum(created for *_, created in outcomes) == 1
        leftovers = [p.name for p in folders[round_number].iterdir() if p.name != "admin.key"]
        assert leftovers == []


def test_eight_processes_creating_the_master_key_at_once_agree_on_one(tmp_path: Path) -> None:
    folders = _fresh_folders(tmp_path)
    for folder in folders:
        store = open_store(f"sqlite:///{folder / 'authgate.db'}")
        store.migrate()
        store.close()
    by_round = _race(_race_master_key, folders)

    assert sorted(by_round) == list(range(ROUNDS))
    for round_number, outcomes in by_round.items():
        errors = [value for _, outcome, value, _ in outcomes if outcome != "ok"]
        assert errors == [], f"round {round_number}: {errors}"
        key_file = folders[round_number] / "master.key"
        keys = [line for line in key_file.read_text().splitlines() if not line.startswith("#")]
        assert len(keys) == 1
        # Every process encrypted under the one key on disk: each token decrypts with it.
        fernet = Fernet(keys[0].encode())
        for worker, _, token, _ in outcomes:
            assert fernet.decrypt(token.encode()) == f"secret of worker {worker}".encode()


@contextmanager
def _serve(workdir: Path, data: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    workdir.mkdir(parents=True)
    err_path = workdir / "serve.err"
    with err_path.open("wb") as err:
        process = subprocess.Popen(
            [AUTHGATE, "serve", "--port", str(port), "--data-dir", str(data)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield process, err_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _healthy(url: str, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/authgate/v1/health", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def test_eight_servers_starting_at_once_on_a_fresh_folder_all_serve_one_admin_key(
    tmp_path: Path,
) -> None:
    for round_number in range(SERVE_ROUNDS):
        root = tmp_path / f"round-{round_number}"
        data = root / "data"
        ports = [free_port() for _ in range(PROCESSES)]
        with ExitStack() as stack:
            servers = [
                stack.enter_context(_serve(root / f"server-{number}", data, port))
                for number, port in enumerate(ports)
            ]
            deadline = time.monotonic() + HEALTHY_WITHIN
            for (process, err_path), port in zip(servers, ports, strict=True):
                url = f"http://127.0.0.1:{port}"
                assert _healthy(url, process, deadline), err_path.read_text(errors="replace")
            token = (data / "admin.key").read_text().strip()
            for port in ports:
                whoami = httpx.get(
                    f"http://127.0.0.1:{port}/authgate/v1/whoami",
                    headers={"X-API-Key": token},
                    timeout=10,
                )
                assert whoami.status_code == 200
                assert whoami.json()["kind"] == "admin_key"
        errors = [err.read_text(errors="replace") for _, err in servers]
        assert not [text for text in errors if "Traceback" in text]
        assert sum("Admin key created" in text for text in errors) == 1
        assert sum("Admin key found" in text for text in errors) == PROCESSES - 1
