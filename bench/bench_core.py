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

from authgate.facts import RequestFacts
from authgate.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.store.schema import api_keys
from authgate.tokens import generate_token

BATCH = 20_000


def rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Best of three runs of calls per second."""
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(1000):
                fn()
            count += 1000
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


def measure(size: int, database_url: str | None, workdir: Path) -> dict[str, float]:
    data_dir = workdir / f"data-{size}"
    settings = load_settings(
        data_dir=data_dir, database_url=database_url, negative_cache_ttl_seconds=60
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

    fresh_unknown = [facts_for(generate_token().token) for _ in range(30_000)]
    fresh_iter = iter(fresh_unknown)

    table = {token: 1 for token in (hashlib.sha256(os.urandom(8)).hexdigest() for _ in range(size))}
    probe = valid.encode()

    def floor() -> object:
        return table.get(hashlib.sha256(probe).hexdigest())

    results = {
        "floor: sha256 + dict lookup": rate(floor),
        "valid key (cache warm)": rate(lambda: authenticate(valid_facts)),
        "malformed token": rate(lambda: authenticate(malformed_facts)),
        "unknown token, seen before": rate(lambda: authenticate(unknown_facts)),
    }
    start = time.perf_counter()
    looked_up = 0
    while time.perf_counter() - start < 2.0 and looked_up < len(fresh_unknown):
        authenticate(next(fresh_iter))
        looked_up += 1
    results["unknown token, fresh (store lookup)"] = looked_up / (time.perf_counter() - start)
    runtime.usage.flush(lambda batch: None)
    runtime.store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        all_results = {size: measure(size, args.database_url, Path(tmp)) for size in sizes}
    names = list(next(iter(all_results.values())))
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
