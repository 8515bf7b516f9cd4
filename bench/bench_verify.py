"""Forward auth alone: ``/authgate/v1/verify`` beside a bare Starlette hello, and what the
access log costs it, written directly on the event loop or through the queue listener
that ``authgate serve`` uses (``authgate.logqueue``).

Run: .venv/bin/python bench/bench_verify.py [--rounds 2] [--duration 3] [--connections 64]

Every server is one uvicorn worker (uvloop, httptools) in its own process on the first
CPU, wrk on the others (as in ``bench_http.py``). Cases:

- bare:          the Starlette hello endpoint, nothing in front (the baseline);
- verify:        ``build_root_app`` answering verify for a valid key, access log off;
- verify-log:    the same with the access log written by a handler on the event loop;
- verify-queued: the same with the access log going through ``QueuedLogging``.

The log goes to a file in a temporary folder. Figures are ratios to bare from the same
run, rounds interleaved; a measurement, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_http
from bench_http import bench_rules, cpu_split, free_port, make_key, run_wrk, wait_for

CASES = ["bare", "verify", "verify-log", "verify-queued"]
VERIFY_HEADERS = {"X-Original-Method": "GET", "X-Original-URI": "/hello"}


def verify_app(data_dir: str, case: str, log_file: str) -> Any:
    from authgate.logqueue import QueuedLogging
    from authgate.runtime import Runtime
    from authgate.server.compose import build_root_app
    from authgate.settings import load_settings

    logged = case != "verify"
    if logged:
        logging.basicConfig(level=logging.INFO, filename=log_file, format="%(message)s")
    settings = load_settings(data_dir=Path(data_dir), access_log=logged, localhost_bypass="off")
    runtime = Runtime(settings)
    runtime.start()
    app = build_root_app(runtime, rules=bench_rules())
    return QueuedLogging(app) if case == "verify-queued" else app


def serve(case: str, port: int, data_dir: str, log_file: str) -> None:
    import uvicorn

    app = bench_http.hello_app() if case == "bare" else verify_app(data_dir, case, log_file)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        lifespan="on",
    )


@contextmanager
def server(case: str, data_dir: str, log_file: str) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", case, "--port", str(port)]
    command += ["--data-dir", data_dir, "--log-file", log_file]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=bench_http._pin_server,
    )
    try:
        wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(case: str, args: argparse.Namespace, data_dir: str, token: str, tmp: str) -> float:
    log_file = os.path.join(tmp, f"{case}.log")
    with server(case, data_dir, log_file) as url:
        if case == "bare":
            target, headers = url + "/hello", {}
        else:
            target, headers = url + "/authgate/v1/verify", {**VERIFY_HEADERS, "X-API-Key": token}
        run_wrk(target, headers, 1, args.connections)  # warm-up
        rate, _count = run_wrk(target, headers, args.duration, args.connections)
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.data_dir, args.log_file)
        return
    bench_http.SERVER_CPUS, load_cpus = cpu_split(True)
    if load_cpus is not None:
        os.sched_setaffinity(0, load_cpus)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir, 0o700)
        token = make_key(data_dir)
        rates: dict[str, list[float]] = {case: [] for case in CASES}
        for _ in range(args.rounds):
            for case in CASES:
                rates[case].append(measure(case, args, data_dir, token, tmp))
    bare = statistics.median(rates["bare"])
    print(f"| case | req/s (median of {args.rounds}) | vs bare | vs verify, log off |")
    print("| --- | --- | --- | --- |")
    verify = statistics.median(rates["verify"])
    for case in CASES:
        rate = statistics.median(rates[case])
        print(f"| {case} | {rate:,.0f} | {rate / bare:.2f} | {rate / verify:.2f} |")


if __name__ == "__main__":
    main()
