"""Console page times on a large store, beside the REST API's answers for the same data.

Run: .venv/bin/python bench/bench_console.py [--requests 200] [--warmup 20]
     [--postgres postgresql://127.0.0.1:5432/test]

A fresh data folder is migrated (``Runtime.prepare_store``), then seeded in bulk with
SQLAlchemy Core: 10,000 API keys, 100,000 audit entries, a week of hourly usage for
500 keys, a few users, sessions and access keys. On SQLite by default; with
``--postgres URL`` in a database of its own, made on that server and dropped after.

A real ``authgate serve`` runs on it (no localhost bypass, no access log); httpx signs
in as the operator through the login form and asks for each page in turn, round after
round, ``--requests`` times each after ``--warmup`` rounds. The REST API is asked for
the same data with the admin key. Every time is taken on the client, over one kept-alive
connection on loopback: the server's time plus one loopback round trip.

Prints p50 and p99 in milliseconds per page, the API's where it has the same listing,
and the ratio console / API (the keys pages against the API's page of the same 50,
``GET /tokens?all=true&limit=50``). Pages whose p99 is over 100 ms are flagged. A
measurement, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.store.schema import (
    api_keys,
    audit_events,
    key_usage_hourly,
    sessions,
    users,
)
from authgate.store.sql.base import engine_url

AUTHGATE = str(Path(sys.executable).parent / "authgate")
PASSWORD = "bench console password"
KEYS = 10_000
EVENTS = 100_000
USERS = 8
CHARTED_KEYS = 500
SESSIONS = 40
ACCESS_KEYS = 20
PAGE = 50
SLOW_MS = 100.0
# How often each action appears in the seeded log: a filter on ``key.revoke`` keeps about
# one event in twenty, so its first page sits well inside the log.
ACTIONS = {
    "key.use": 40,
    "login": 20,
    "key.create": 15,
    "key.show": 10,
    "key.revoke": 5,
    "user.update": 4,
    "key.rotate": 3,
    "settings.update": 2,
    "user.create": 1,
}
FILTERED_ACTION = "key.revoke"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{secrets.token_hex(8)}" for _ in range(count)]


def seed(data: Path, database_url: str | None) -> str:
    """Migrate and fill the store; returns the id of a key with a week of usage."""
    settings = load_settings(data_dir=data, database_url=database_url)
    runtime = Runtime(settings)
    runtime.start()
    try:
        # Through the service: their secrets need the master key's encryption.
        for index in range(ACCESS_KEYS):
            runtime.access_keys.create(
                Actor("bench"), name=f"bench-ak-{index:02d}", grants=[(f"bucket-{index}", "read")]
            )
    finally:
        runtime.close()
    now = datetime.now(UTC)
    rng = random.Random(7)
    engine = sa.create_engine(engine_url(settings.resolved_database_url))
    user_ids = _ids("usr", USERS)
    key_ids = _ids("key", KEYS)
    with engine.begin() as conn:
        conn.execute(
            users.insert(),
            [
                {
                    "id": user_id,
                    "email": f"user{index}@example.com",
                    "email_key": f"user{index}@example.com",
                    "password_hash": None,
                    "role": "admin" if index == 0 else "member",
                    "active": True,
                    "created_at": now - timedelta(days=100),
                    "updated_at": now - timedelta(days=100),
                }
                for index, user_id in enumerate(user_ids)
            ],
        )
        owners: list[str | None] = [None, *user_ids]
        conn.execute(
            api_keys.insert(),
            [
                {
                    "id": key_id,
                    "name": f"service-{index:05d}",
                    "owner_id": owners[index % len(owners)],
                    "created_by": "bench",
                    "scopes": ["read"],
                    "digest": hashlib.sha256(key_id.encode()).hexdigest(),
                    "hint": f"ag_{key_id[-4:]}",
                    "created_at": now - timedelta(minutes=KEYS - index),
                    "expires_at": None,
                    "revoked_at": now - timedelta(minutes=1) if index % 10 == 0 else None,
                    "rotated_to": None,
                    "last_used_at": now - timedelta(minutes=index % 600),
                    "use_count": index,
                }
                for index, key_id in enumerate(key_ids)
            ],
        )
        actions = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()), k=EVENTS)
        actors = [*user_ids, "cli", "operator:admin"]
        for start in range(0, EVENTS, 10_000):
            conn.execute(
                audit_events.insert(),
                [
                    {
                        "at": now - timedelta(seconds=(EVENTS - index) * 30),
                        "actor": actors[index % len(actors)],
                        "action": actions[index],
                        "target": key_ids[index % KEYS],
                        "source": "127.0.0.1",
                        "outcome": "success",
                        "detail": {"name": f"service-{index % KEYS:05d}"},
                    }
                    for index in range(start, start + 10_000)
                ],
            )
        hour = now.replace(minute=0, second=0, microsecond=0)
        conn.execute(
            key_usage_hourly.insert(),
            [
                {"key_id": key_id, "hour": hour - timedelta(hours=back), "count": back + 1}
                for key_id in key_ids[-CHARTED_KEYS:]
                for back in range(24 * 7)
            ],
        )
        conn.execute(
            sessions.insert(),
            [
                {
                    "id": f"ses_{secrets.token_hex(8)}",
                    "digest": secrets.token_hex(32),
                    "user_id": user_ids[index % USERS],
                    "operator": None,
                    "created_at": now - timedelta(hours=index),
                    "last_seen_at": now,
                    "expires_at": now + timedelta(hours=8),
                    "revoked_at": None,
                    "source": "127.0.0.1",
                    "user_agent": "bench",
                }
                for index in range(SESSIONS)
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return key_ids[-1]


@contextmanager
def serve(data: Path, database_url: str | None, port: int) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(
        AUTHGATE_DATA_DIR=str(data),
        AUTHGATE_LOCALHOST_BYPASS="off",
        AUTHGATE_PASSWORD=PASSWORD,
        AUTHGATE_ACCESS_LOG="false",
    )
    if database_url:
        env["AUTHGATE_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [AUTHGATE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/authgate/v1/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"authgate serve on port {port} did not start")
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def sign_in(console: httpx.Client) -> None:
    page = console.get("/login")
    page.raise_for_status()
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, "no form token on the login page"
    form = {"csrf": found.group(1), "identity": "admin", "password": PASSWORD, "next": ""}
    answer = console.post("/login", data=form)
    assert answer.status_code in (302, 303), (answer.status_code, answer.text[:300])
    assert console.get("/keys").status_code == 200


Probe = tuple[str, Callable[[], httpx.Response]]


def pairs(
    console: httpx.Client, api: httpx.Client, key_id: str
) -> list[tuple[Probe, Probe | None]]:
    """Each console page and the API call that answers with the same data, if any."""

    def get(client: httpx.Client, path: str) -> Callable[[], httpx.Response]:
        return lambda: client.get(path)

    deep = PAGE * 999
    return [
        (
            ("keys, page 1", get(console, "/keys")),
            ("GET /tokens?limit=50", get(api, "/tokens?all=true&limit=50")),
        ),
        (
            ("keys, page 100", get(console, "/keys?page=100")),
            ("GET /tokens?offset=…", get(api, f"/tokens?all=true&limit=50&offset={PAGE * 99}")),
        ),
        (
            ("keys, search", get(console, "/keys?q=service-042")),
            ("GET /tokens?search=…", get(api, "/tokens?all=true&limit=50&search=service-042")),
        ),
        (
            ("one key + chart", get(console, f"/keys/{key_id}")),
            ("GET /tokens/{id}", get(api, f"/tokens/{key_id}")),
        ),
        (("users", get(console, "/users")), ("GET /users", get(api, "/users"))),
        (
            ("access keys", get(console, "/access-keys")),
            ("GET /access-keys", get(api, "/access-keys")),
        ),
        (
            ("audit, page 1", get(console, "/audit")),
            ("GET /audit?limit=50", get(api, "/audit?limit=50")),
        ),
        (
            ("audit, page 1000", get(console, "/audit?page=1000")),
            (f"GET /audit?offset={deep}", get(api, f"/audit?limit=50&offset={deep}")),
        ),
        (
            (f"audit, action={FILTERED_ACTION}", get(console, f"/audit?action={FILTERED_ACTION}")),
            ("GET /audit?action=…", get(api, f"/audit?limit=50&action={FILTERED_ACTION}")),
        ),
        (("settings", get(console, "/settings")), ("GET /settings", get(api, "/settings"))),
        (("sessions", get(console, "/sessions")), None),
    ]


def measure(
    probes: list[Probe], requests: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, Counter[int]]]:
    """Milliseconds per probe, and the statuses other than 200 (a store past its deadline
    answers 503: counted, not fatal); round after round, so drift falls on every page
    alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in probes}
    failures: dict[str, Counter[int]] = {name: Counter() for name, _ in probes}
    for round_ in range(warmup + requests):
        for name, probe in probes:
            start = time.perf_counter()
            answer = probe()
            elapsed = (time.perf_counter() - start) * 1000
            if answer.status_code != 200:
                assert answer.status_code == 503, (name, answer.status_code, answer.text[:300])
                failures[name][answer.status_code] += 1
            if round_ >= warmup:
                times[name].append(elapsed)
    return times, failures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _cell(name: str, times: dict[str, list[float]], failures: dict[str, Counter[int]]) -> str:
    p50, p99 = statistics.median(times[name]), percentile(times[name], 0.99)
    failed = ", ".join(f"{count}x {status}" for status, count in failures[name].items())
    return f"{p50:.1f} / {p99:.1f}" + (f" ({failed})" if failed else "")


def report(
    label: str,
    table: list[tuple[Probe, Probe | None]],
    times: dict[str, list[float]],
    failures: dict[str, Counter[int]],
) -> None:
    print(f"\n{label}: ms on the client, p50 / p99 (answers other than 200, warm-up included)\n")
    print("| console page | console | API call | API | console/API p50 | p99 > 100 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, _), api in table:
        p50, p99 = statistics.median(times[name]), percentile(times[name], 0.99)
        flags = ["console"] if p99 > SLOW_MS else []
        api_cells = "| — | — | —"
        if api is not None:
            a50, a99 = statistics.median(times[api[0]]), percentile(times[api[0]], 0.99)
            api_cells = f"| {api[0]} | {_cell(api[0], times, failures)} | {p50 / a50:.2f}"
            if a99 > SLOW_MS:
                flags.append("API")
        print(
            f"| {name} | {_cell(name, times, failures)} {api_cells} | {', '.join(flags) or 'no'} |"
        )


def run(label: str, data: Path, database_url: str | None, requests: int, warmup: int) -> None:
    started = time.perf_counter()
    key_id = seed(data, database_url)
    print(f"{label}: seeded in {time.perf_counter() - started:.1f} s", flush=True)
    port = free_port()
    with serve(data, database_url, port):
        admin = (data / "admin.key").read_text().strip()
        base = f"http://127.0.0.1:{port}/authgate"
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with (
            httpx.Client(base_url=f"{base}/console", timeout=60, limits=one) as console,
            httpx.Client(
                base_url=f"{base}/v1", timeout=60, limits=one, headers={"X-API-Key": admin}
            ) as api,
        ):
            sign_in(console)
            table = pairs(console, api, key_id)
            probes = [probe for pair in table for probe in pair if probe is not None]
            times, failures = measure(probes, requests, warmup)
    report(label, table, times, failures)


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A database of its own on the server of ``url``, dropped after."""
    name = f"authgate_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--postgres", default=None, help="Run on this PostgreSQL server.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        if args.postgres:
            with postgres_database(args.postgres) as database_url:
                run("PostgreSQL", data, database_url, args.requests, args.warmup)
        else:
            run("SQLite", data, None, args.requests, args.warmup)


if __name__ == "__main__":
    main()
