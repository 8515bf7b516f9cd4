"""Where a proxied request's CPU goes in ``authgate serve --upstream``.

Run: .venv/bin/python bench/profile_gateway.py [--duration 3]

Starts a bare hello upstream and the gateway as ``bench_forward`` does (servers on the
first CPU, wrk on the second), measures the gateway process's CPU µs per request under
wrk, then runs it again under cProfile and splits that figure by where the profile
found the time: the server side (uvicorn, httptools), the event loop, the auth
(middleware, gate, key cache), the gateway's own header handling and response relay,
and the upstream client (aiohttp with multidict and yarl). cProfile inflates cheap Python
calls more than C, so the split is a guide; the unprofiled total is the measurement.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_http
from bench_forward import authgate_command
from bench_http import cpu_seconds, cpu_split, free_port, make_key, run_wrk, server

# (part, markers in a profiled function's file name), first match wins.
PARTS = [
    ("server side (uvicorn, httptools)", ("uvicorn", "authgate/server/protocol", "httptools")),
    ("upstream client (aiohttp)", ("aiohttp", "multidict", "yarl", "propcache")),
    ("gateway: headers, relay", ("authgate/proxy",)),
    ("auth (middleware, gate, cache)", ("authgate",)),
    ("event loop (uvloop, asyncio)", ("uvloop", "asyncio")),
    ("C calls (bytes, dict, ...)", ("~",)),
]


# ``authgate serve`` with a profiler that the bench switches on once the server is warm
# and off after the load (SIGUSR1, SIGUSR2), so start-up is not in the split.
PROFILED_SERVE = """
import cProfile, signal, sys
from authgate.cli import main
out = sys.argv[1]
sys.argv = ["authgate", *sys.argv[2:]]
profile = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
def stop(*_):
    profile.disable()
    profile.dump_stats(out)
signal.signal(signal.SIGUSR2, stop)
main()
"""


def part_of(filename: str) -> str:
    for part, markers in PARTS:
        if any(marker in filename for marker in markers):
            return part
    return "other"


def split(profile: Path) -> dict[str, float]:
    """Each part's share of the profiled time."""
    stats = pstats.Stats(str(profile))
    parts: dict[str, float] = {}
    entries: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in entries.items():
        parts[part_of(filename)] = parts.get(part_of(filename), 0.0) + own
    total = sum(parts.values())
    return {part: value / total for part, value in parts.items()}


def cpu_per_request(url: str, pid: int, token: str, seconds: float, profiled: bool) -> float:
    headers = {"X-API-Key": token}
    run_wrk(url, headers, 1, 64)
    if profiled:
        os.kill(pid, signal.SIGUSR1)
    before = cpu_seconds(pid)
    _rate, count = run_wrk(url, headers, seconds, 64)
    after = cpu_seconds(pid)
    if profiled:
        os.kill(pid, signal.SIGUSR2)
    if before is None or after is None or not count:
        raise RuntimeError("cannot read the gateway's CPU time")
    return (after - before) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    server_cpus, load_cpus = cpu_split(True)
    if server_cpus is None or load_cpus is None:
        sys.exit("profile_gateway needs two CPUs: one for the servers, one for wrk")
    bench_http.SERVER_CPUS = server_cpus
    os.sched_setaffinity(0, load_cpus)
    with tempfile.TemporaryDirectory(prefix="authgate-profile-") as tmp:
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir, 0o700)
        token = make_key(data_dir)
        profile = Path(tmp) / "gateway.prof"
        with server("bare") as hello:
            port = free_port()
            command = authgate_command(port, data_dir, "--upstream", hello.url)
            with server("gateway", command=command, port=port) as gateway:
                url = f"{gateway.url}/hello"
                total = cpu_per_request(url, gateway.pid, token, args.duration, profiled=False)
            port = free_port()
            command = authgate_command(port, data_dir, "--upstream", hello.url)
            profiled = [sys.executable, "-c", PROFILED_SERVE, str(profile), *command[1:]]
            with server("gateway", command=profiled, port=port) as gateway:
                url = f"{gateway.url}/hello"
                cpu_per_request(url, gateway.pid, token, args.duration, profiled=True)
                deadline = time.monotonic() + 10
                while not profile.exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
        shares = split(profile)
    print(f"gateway CPU per proxied request (unprofiled): {total:.0f} µs\n")
    print("| part | share of profile | ≈ CPU µs/req |")
    print("| --- | --- | --- |")
    for part, share in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"| {part} | {share:.0%} | {share * total:.0f} |")


if __name__ == "__main__":
    main()
