"""How fast a revoked key is refused everywhere: 3 instances on PostgreSQL (with and
without Redis) and one ``serve --workers 2``.

Run: .venv/bin/python bench/bench_revocation.py [--trials 30] [--postgres URL] [--redis URL]

For each trial a key is made, used on every instance (so each holds it in memory), then
revoked through the first instance's API; each instance is asked again and again, on a
connection of its own, until it refuses the key. Reported per setup: p50 and p99 of the
time until the *slowest* other instance refused it, and the same for the instance that
revoked it (the baseline, measured in the same trials), with the ratio between the two.
For the workers, one connection per worker stands in for an instance (which worker holds
a connection is read from /proc). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa

AUTHGATE = str(Path(sys.executable).parent / "authgate")
WHOAMI = "/authgate/v1/whoami"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(data: Path, database_url: str | None, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(AUTHGATE_DATA_DIR=str(data), AUTHGATE_ACCESS_LOG="false")
    if database_url:
        env["AUTHGATE_DATABASE_URL"] = database_url
    if redis_url:
        env["AUTHGATE_REDIS_URL"] = redis_url
    return env


@contextmanager
def serve(env: dict[str, str], port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [AUTHGATE, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/authgate/v1/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"authgate serve on port {port} did not start")
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def status(conn: http.client.HTTPConnection, method: str, path: str, token: str) -> int:
    for attempt in (1, 2):
        try:
            conn.request(method, path, headers={"X-API-Key": token})
            response = conn.getresponse()
            response.read()
            return response.status
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection (its header timeout).
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def create_key(port: int, admin: str) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"name": f"bench-{uuid.uuid4().hex[:12]}"})
    conn.request(
        "POST",
        "/authgate/v1/tokens",
        body=body,
        headers={"X-API-Key": admin, "Content-Type": "application/json"},
    )
    created = json.loads(conn.getresponse().read())
    conn.close()
    return created["id"], created["token"]


def until_refused(conn: http.client.HTTPConnection, token: str, start: float) -> float:
    deadline = start + 30
    while time.perf_counter() < deadline:
        # 429 is a refusal too: the polling's own failures reach the failure limit.
        if status(conn, "GET", WHOAMI, token) in (401, 429):
            return time.perf_counter() - start
    return float("inf")


def trial(
    revoker: http.client.HTTPConnection,
    others: list[http.client.HTTPConnection],
    admin: str,
    key_id: str,
    token: str,
) -> tuple[float, float]:
    for conn in [revoker, *others]:
        assert status(conn, "GET", WHOAMI, token) == 200
    results: list[float] = [0.0] * len(others)
    started = threading.Barrier(len(others) + 1)

    def watch(index: int, conn: http.client.HTTPConnection) -> None:
        started.wait()
        results[index] = until_refused(conn, token, start_at[0])

    start_at = [0.0]
    threads = [threading.Thread(target=watch, args=(i, c)) for i, c in enumerate(others)]
    for thread in threads:
        thread.start()
    start_at[0] = time.perf_counter()
    assert status(revoker, "DELETE", f"/authgate/v1/tokens/{key_id}", admin) == 200
    started.wait()
    local = until_refused(revoker, token, start_at[0])
    for thread in threads:
        thread.join()
    return local, max(results)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def report(name: str, samples: list[tuple[float, float]]) -> None:
    local = [s[0] * 1000 for s in samples]
    remote = [s[1] * 1000 for s in samples]
    p50l, p99l = statistics.median(local), percentile(local, 0.99)
    p50r, p99r = statistics.median(remote), percentile(remote, 0.99)
    print(
        f"| {name} | {p50l:.1f} / {p99l:.1f} | {p50r:.1f} / {p99r:.1f} | "
        f"{p50r / p50l:.1f}x / {p99r / p99l:.1f}x |"
    )


def instances(trials: int, database_url: str, redis_url: str | None, workdir: Path) -> None:
    ports = [free_port() for _ in range(3)]
    with ExitStack() as stack:
        for index, port in enumerate(ports):
            env = env_for(workdir / f"data{index}", database_url, redis_url)
            stack.enter_context(serve(env, port))
            if index == 0:
                admin = (workdir / "data0" / "admin.key").read_text().strip()
        conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports]
        samples = []
        for _ in range(trials):
            key_id, token = create_key(ports[0], admin)
            samples.append(trial(conns[0], conns[1:], admin, key_id, token))
        report("3 instances, PostgreSQL" + (" + Redis" if redis_url else " alone"), samples)


def _owner(pid_children: list[int], server_port: int, conn: http.client.HTTPConnection) -> int:
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (
            int(fields[1].split(":")[1], 16) == server_port
            and int(fields[2].split(":")[1], 16) == client_port
        ):
            inode = fields[9]
            for pid in pid_children:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    try:
                        if os.readlink(fd) == f"socket:[{inode}]":
                            return pid
                    except OSError:
                        continue
    return -1


def workers(trials: int, workdir: Path) -> None:
    port = free_port()
    data = workdir / "workers"
    with serve(env_for(data, None, None), port, "--workers", "2") as process:
        admin = (data / "admin.key").read_text().strip()
        time.sleep(2)
        children = [
            int(c)
            for task in Path(f"/proc/{process.pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
        by_worker: dict[int, http.client.HTTPConnection] = {}
        for _ in range(64):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status(conn, "GET", "/authgate/v1/health", admin)
            owner = _owner(children, port, conn)
            if owner > 0 and owner not in by_worker:
                by_worker[owner] = conn
            if len(by_worker) == 2:
                break
        if len(by_worker) < 2:
            raise SystemExit("could not reach both workers")
        first, second = by_worker.values()
        samples = []
        for _ in range(trials):
            key_id, token = create_key(port, admin)
            samples.append(trial(first, [second], admin, key_id, token))
        report("serve --workers 2, SQLite, no Redis", samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    name = f"authgate_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = args.postgres.rsplit("/", 1)[0].replace("+psycopg", "") + f"/{name}"
    print("time until the key is refused, ms (p50 / p99)\n")
    print("| setup | the revoking instance | the slowest other | ratio |")
    print("| --- | --- | --- | --- |")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            instances(args.trials, database_url, args.redis, workdir / "redis")
            instances(args.trials, database_url, None, workdir / "pg")
            workers(args.trials, workdir)
    finally:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
