"""Authentications per second of the core, with 1,000 and 1,000,000 keys in the store.

Run: .venv/bin/python bench/bench_core.py [--sizes 1000,1000000] [--database-url URL]

Prints, for each store size, the rate of the floor (one hashlib.sha256 plus a dict
lookup) and of the core for a valid key (cache warm), a malformed token, a well-formed
unknown token seen before (answered from memory) and a fresh unknown token each time
(one indexed store lookup), each with its ratio to the floor. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from authgate.credentials.tokens import generate_token
from authgate.facts import RequestFacts
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.store.schema import api_keys

BATCH = 20_000
FRESH_TOKENS = 20_000


def rate(fn: Callable[[], object], seconds: float = 1.0, rounds: int = 3) -> float:
    """Best of ``rounds`` runs of calls per second."""
    best = 0.0
    for _ in range(rounds):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(100):
                fn()
            count += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def fill(runtime: Runtime, count: int) -> None:
    """Insert ``count`` keys straight through SQLAlchemy (random digests: nobody holds
    their tokens, which is exactly what a large store looks like to one client)."""
    now = datetime.now(UTC)
    with runtime.store.engine.begin() as conn:
        for start in range(0, count, BATCH):
            rows = [
                {
                    "id": f"key_bench{start + i:011d}",
                    "name": f"bench-{start + i}",
                    "owner_id": None,
                    "created_by": "bench",
                    "scopes": [],
                    "digest": hashlib.sha256(os.urandom(32)).hexdigest(),
                    "hint": "ag_xxxx…",
                    "created_at": now,
                    "use_count": 0,
                }
                for i in range(min(BATCH, count - start))
            ]
            conn.execute(sa.insert(api_keys), rows)


def facts_for(token: str) -> RequestFacts:
    return RequestFacts(method="GET", path="/", headers=(("x-api-key", token),), peer="10.0.0.1")


def prepare(size: int, database_url: str | None, workdir: Path) -> dict[str, Callable[[], object]]:
    """A store of ``size`` keys and the calls to time against it."""
    settings = load_settings(
        data_dir=workdir / f"data-{size}",
        database_url=database_url,
        negative_cache_ttl_seconds=600,
    )
    runtime = Runtime(settings)
    runtime.prepare_store()
    if database_url:
        with runtime.store.engine.begin() as conn:
            conn.execute(sa.delete(api_keys))
    fill(runtime, size)
    runtime.authenticator.ready = True
    valid = runtime.keys.create(Actor("bench"), name="bench-valid").token
    authenticate = runtime.authenticator.authenticate
    valid_facts = facts_for(valid)
    malformed_facts = facts_for("ag_" + "x" * 40 + "000000")
    unknown_facts = facts_for(generate_token().token)
    assert not isinstance(authenticate(valid_facts), Exception)
    authenticate(unknown_facts)  # remembered from now on
    fresh = iter([facts_for(generate_token().token) for _ in range(FRESH_TOKENS)])

    table = {hashlib.sha256(os.urandom(8)).hexdigest(): 1 for _ in range(size)}
    probe = valid.encode()
    return {
        "floor: sha256 + dict lookup": lambda: table.get(hashlib.sha256(probe).hexdigest()),
        "valid key (cache warm)": lambda: authenticate(valid_facts),
        "malformed token": lambda: authenticate(malformed_facts),
        "unknown token, seen before": lambda: authenticate(unknown_facts),
        "unknown token, fresh (store lookup)": lambda: authenticate(next(fresh)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {size: prepare(size, args.database_url, Path(tmp)) for size in sizes}
        names = list(cases[sizes[0]])
        all_results: dict[int, dict[str, float]] = {size: {} for size in sizes}
        # Sizes alternate within each case, so a busy moment on the machine hits both.
        for name in names:
            fresh = name.startswith("unknown token, fresh")
            for size in sizes:
                all_results[size][name] = 0.0
            for _ in range(1 if fresh else 3):
                for size in sizes:
                    measured = rate(cases[size][name], 0.5 if fresh else 1.0, rounds=1)
                    all_results[size][name] = max(all_results[size][name], measured)
    header = f"{'per second':38}" + "".join(f"{f'{s:,} keys':>16}{'/floor':>8}" for s in sizes)
    print(header)
    for name in names:
        line = f"{name:38}"
        for size in sizes:
            value = all_results[size][name]
            floor = all_results[size]["floor: sha256 + dict lookup"]
            line += f"{value:>16,.0f}{value / floor:>8.2f}"
        print(line)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"\nchange from {small:,} to {large:,} keys:")
        for name in names:
            change = all_results[large][name] / all_results[small][name] - 1
            print(f"  {name:36} {change:+.1%}")


if __name__ == "__main__":
    main()
