"""Latency of a valid uncached key while 60 clients send bad tokens, Redis healthy vs hung.

Run: .venv/bin/python bench/bench_redis_hung.py [--requests 300] [--clients 60]

Starts a redis-server of its own on a free port (no persistence, temporary folder) and
``authgate serve`` on it (SQLite, default settings: failure limit on, counted in Redis).
In each phase, a separate process keeps ``--clients`` connections sending well-formed
tokens nobody holds (a store lookup and a failure to count each), while this process
sends ``--requests`` requests, one at a time, each with a key never used before (a store
lookup, no cached verdict). Phases, in one run: Redis healthy, Redis hung
(SIGSTOP), Redis healthy again. Prints p50 / p99 / max of each and the hung phase's
ratio to the two healthy phases taken together.
The target: p99 under 50 ms with Redis hung. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

from authgate.credentials.tokens import generate_token
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings

WHOAMI = "/authgate/v1/whoami"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def authgate_serve(data_dir: Path, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env |= {"AUTHGATE_REDIS_URL": redis_url, "AUTHGATE_ACCESS_LOG": "false"}
    authgate = str(Path(sys.executable).with_name("authgate"))
    command = [authgate, "serve", "--port", str(port), "--data-dir", str(data_dir)]
    log = (data_dir.parent / "serve.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # serve opens its port once started; /health then answers 200.
                answer = httpx.get(url + "/authgate/v1/health", timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                answer = None
            if process.poll() is not None or time.monotonic() > deadline:
                seen = answer.text if answer is not None else "no answer"
                output = (data_dir.parent / "serve.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"authgate serve did not start: {seen}\n{output}")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def bad_token_clients(
    url: str, clients: int, started: Event, stop: Event, answered: Synchronized[int]
) -> None:
    """Run in a process of its own, so its work does not share this one's interpreter.

    Raw HTTP/1.1 on keep-alive connections: httpx's async pool, with 60 connections in
    one process, answered fewer requests a second than the server could."""
    host, port = url.removeprefix("http://").split(":")

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not stop.is_set():
                request = (
                    f"GET {WHOAMI} HTTP/1.1\r\nHost: {host}\r\n"
                    f"X-API-Key: {generate_token().token}\r\n\r\n"
                )
                writer.write(request.encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                with answered.get_lock():
                    answered.value += 1
        finally:
            writer.close()

    async def main() -> None:
        tasks = [asyncio.create_task(one()) for _ in range(clients)]
        started.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())


@contextmanager
def bad_traffic(url: str, clients: int) -> Iterator[Synchronized[int]]:
    """The bad-token clients, running; yields the count of their answers so far."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    answered = context.Value("q", 0)
    process = context.Process(
        target=bad_token_clients, args=(url, clients, started, stop, answered)
    )
    process.start()
    try:
        if not started.wait(30):
            raise RuntimeError("the bad-token clients did not start")
        time.sleep(1.0)  # let every connection be busy before measuring
        yield answered
    finally:
        stop.set()
        process.join(timeout=90)
        if process.is_alive():
            process.kill()


def measure(url: str, tokens: list[str]) -> list[float]:
    """Milliseconds per request, each with a key not used before."""
    timings: list[float] = []
    with httpx.Client(timeout=60) as http:
        for token in tokens:
            start = time.perf_counter()
            response = http.get(url + WHOAMI, headers={"X-API-Key": token})
            timings.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"a valid key got {response.status_code}: {response.text}")
    return timings


def summary(timings: list[float]) -> tuple[float, float, float]:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=60)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        creator = Runtime(load_settings(data_dir=data_dir))
        creator.prepare_store()
        tokens = [
            creator.keys.create(Actor("bench"), name=f"k{i}").token
            for i in range(3 * args.requests)
        ]
        creator.close()
        timings: dict[str, list[float]] = {}
        bad_rates: dict[str, float] = {}
        batches = iter(tokens[i : i + args.requests] for i in range(0, len(tokens), args.requests))

        def phase(name: str, url: str) -> None:
            with bad_traffic(url, args.clients) as answered:
                before, start = answered.value, time.perf_counter()
                timings[name] = measure(url, next(batches))
                bad_rates[name] = (answered.value - before) / (time.perf_counter() - start)

        with (
            redis_server(Path(folder)) as (redis, redis_url),
            authgate_serve(data_dir, redis_url) as url,
        ):
            phase("Redis healthy", url)
            os.kill(redis.pid, signal.SIGSTOP)
            try:
                phase("Redis hung", url)
            finally:
                os.kill(redis.pid, signal.SIGCONT)
            time.sleep(3.0)  # past the breaker's reset: Redis is asked again
            phase("healthy again", url)

    print(f"valid uncached key, {args.requests} requests, {args.clients} bad-token clients")
    print(f"{'':16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bad answers/s':>14}")
    for name, measured in timings.items():
        p50, p99, worst = summary(measured)
        print(f"{name:16} {p50:8.1f} {p99:8.1f} {worst:8.1f} {bad_rates[name]:14.0f}")
    # Both healthy phases together, so a drift of the machine's speed over the run
    # weighs on the baseline as on the hung phase between them.
    healthy = summary(timings["Redis healthy"] + timings["healthy again"])
    hung = summary(timings["Redis hung"])
    print(f"hung / healthy:  p50 x{hung[0] / healthy[0]:.2f}, p99 x{hung[1] / healthy[1]:.2f}")


if __name__ == "__main__":
    main()
