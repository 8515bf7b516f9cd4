"""What metrics cost the middleware's hot path: a valid key, decided from memory.

Run: .venv/bin/python bench/bench_metrics.py [--rounds 5] [--seconds 1]

Calls ``AuthgateMiddleware`` in process (no server, no socket: only authgate's own work
and a two-message app), with metrics off and on in alternating rounds of the same run,
and prints the best rate of each and their ratio. On a valid key the metrics add one
decision count, one latency observation and one cache hit. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from authgate import metrics
from authgate.adapters.asgi import AuthgateMiddleware
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _rate(middleware: AuthgateMiddleware, scope: dict[str, Any], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            await middleware(dict(scope), _receive, _send)
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


async def _measure(rounds: int, seconds: float, workdir: Path) -> None:
    settings = load_settings(data_dir=workdir / "data", access_log=False)
    runtime = Runtime(settings)
    runtime.start()
    try:
        token = runtime.keys.create(Actor("bench"), name="bench-metrics").token
        middleware = AuthgateMiddleware(_app, runtime=runtime, manage_runtime=False)
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/hello",
            "raw_path": b"/hello",
            "query_string": b"",
            "headers": [(b"host", b"bench"), (b"x-api-key", token.encode())],
            "client": ("10.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "scheme": "http",
        }
        recorder = metrics.enable()
        best = {"off": 0.0, "on": 0.0}
        for _ in range(rounds):
            for mode in ("off", "on"):
                metrics.recorder = recorder if mode == "on" else None
                best[mode] = max(best[mode], await _rate(middleware, scope, seconds))
        metrics.recorder = recorder
        print(f"{'requests per second':24}{'best':>12}")
        print(f"{'metrics off (baseline)':24}{best['off']:>12,.0f}")
        print(f"{'metrics on':24}{best['on']:>12,.0f}")
        print(f"ratio on/off: {best['on'] / best['off']:.3f}")
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_measure(args.rounds, args.seconds, Path(tmp)))


if __name__ == "__main__":
    main()
