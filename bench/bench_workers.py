"""Requests per second of ``authgate serve --workers 2`` beside ``--workers 1``.

Run: .venv/bin/python bench/bench_workers.py [--rounds 3] [--seconds 5] [--connections 64]

Both serve the same SQLite data folder; the load is a valid key on
``GET /authgate/v1/whoami`` from wrk (``apt-get install wrk``). Rounds alternate between
the two so a machine whose speed drifts treats both alike; the table shows each one's
median and the ratio of the medians. On a two-core machine the load generator shares the
cores with the workers, so the ratio is what a host that also runs its clients sees. A
measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_http import run_wrk
from bench_revocation import env_for, free_port, serve


def measure(data: Path, workers: int, seconds: float, connections: int) -> float:
    port = free_port()
    with serve(env_for(data, None, None), port, "--workers", str(workers)):
        admin = (data / "admin.key").read_text().strip()
        url = f"http://127.0.0.1:{port}/authgate/v1/whoami"
        headers = {"X-API-Key": admin}
        run_wrk(url, headers, 1.0, connections)  # warm every worker's memory
        rate, _count = run_wrk(url, headers, seconds, connections)
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_workers needs wrk: apt-get install wrk")
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        for _ in range(args.rounds):
            for workers in (1, 2):
                rates[workers].append(measure(data, workers, args.seconds, args.connections))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"cores: {os.cpu_count()}, wrk: 1 thread, {args.connections} connections\n")
    print("| serve | req/s (median of rounds) | vs --workers 1 |")
    print("| --- | --- | --- |")
    print(f"| --workers 1 | {one:,.0f} | 1.00 |")
    print(f"| --workers 2 | {two:,.0f} | {two / one:.2f} |")


if __name__ == "__main__":
    main()
