"""Assertions on beside assertions off, through the gateway and through verify.

Run: .venv/bin/python bench/bench_assertion.py [--rounds 2] [--duration 3] [--connections 32]

``authgate serve`` processes on one data folder and one key, the same but for
``assertion = true``, each in front of the same bare upstream (bench_http's hello app).
Load (wrk) goes to the gateway (``GET /hello``) and to verify (``GET
/authgate/v1/verify`` with the forwarded method and URI), all servers loaded at the
same moment in each round, so the ratio compares like with like on a shared machine
whose speed drifts. A third server, off like the first, is the control: its ratio to
the first shows how far two identical servers differ here. The figure is the median of
the rounds' ratios (on / off); target >= 95 %.

Also printed: how many assertions one process can sign per second in-process, beside
the gateway's request rate: what every request would pay without the reuse cache. A
measurement, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench_http import ROOT, free_port, make_key, run_wrk, server, wait_for

CONFIG = """
assertion = {assertion}

[[rules]]
method = "GET"
path = "/hello"
scopes = ["read"]
"""


@contextmanager
def authgate(data_dir: str, upstream: str, *, assertion: bool) -> Iterator[str]:
    config = Path(data_dir).parent / f"assertion-{assertion}.toml"
    config.write_text(CONFIG.format(assertion=str(assertion).lower()))
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "authgate"), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--data-dir", data_dir, "--config", str(config),
        "--upstream", upstream, "--no-access-log", "--localhost-bypass", "off", "--tls", "off",
    ]  # fmt: skip
    log = tempfile.NamedTemporaryFile(prefix="bench-assertion-", suffix=".log", delete=False)
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(log.name)


def signs_per_second(data_dir: str, seconds: float = 1.0) -> float:
    from authgate.assertion.issuer import AssertionIssuer, keys_from_settings
    from authgate.principal import Principal
    from authgate.settings import load_settings

    keys = keys_from_settings(load_settings(data_dir=Path(data_dir), assertion=True))
    issuer = AssertionIssuer(keys, issuer="authgate", audience="http://x", lifetime_seconds=60)
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        # A new principal each time: a cache miss, so a signature.
        issuer.assertion_for(Principal(id=f"key_{count}", name="n", kind="api_key"))
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = str(Path(tmp) / "data")
        Path(data_dir).mkdir(mode=0o700)
        token = make_key(data_dir)
        auth = {"X-API-Key": token}
        forwarded = {**auth, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/hello"}
        targets = {"gateway": ("/hello", auth), "verify": ("/authgate/v1/verify", forwarded)}
        ratios: dict[str, list[float]] = {name: [] for name in targets}
        controls: dict[str, list[float]] = {name: [] for name in targets}
        rates: dict[tuple[str, bool | None], list[float]] = {}
        with (
            server("bare") as upstream,
            authgate(data_dir, upstream.url, assertion=False) as off,
            authgate(data_dir, upstream.url, assertion=False) as control,
            authgate(data_dir, upstream.url, assertion=True) as on,
        ):
            for name, (path, headers) in targets.items():  # warm-up
                for base in (off, on):
                    run_wrk(base + path, headers, 1.0, args.connections)
            for _ in range(args.rounds):
                for name, (path, headers) in targets.items():
                    # Both loaded at the same moment: whatever the shared machine does
                    # meanwhile, it does to both.
                    with ThreadPoolExecutor(3) as pool:
                        runs = {
                            enabled: pool.submit(
                                run_wrk, base + path, headers, args.duration, args.connections
                            )
                            for enabled, base in ((False, off), (None, control), (True, on))
                        }
                        measured = {enabled: run.result()[0] for enabled, run in runs.items()}
                    for enabled, rate in measured.items():
                        rates.setdefault((name, enabled), []).append(rate)
                    ratios[name].append(measured[True] / measured[False])
                    controls[name].append(measured[None] / measured[False])
        signs = signs_per_second(data_dir)
    print(f"rounds: {args.rounds} x {args.duration:.0f} s, {args.connections} connections (wrk)")
    for name in targets:
        off_rate = statistics.median(rates[(name, False)])
        on_rate = statistics.median(rates[(name, True)])
        ratio = statistics.median(ratios[name])
        print(
            f"{name:8s} off {off_rate:8.0f} req/s  on {on_rate:8.0f} req/s  "
            f"on/off {ratio:6.1%}  (rounds: {', '.join(f'{r:.1%}' for r in ratios[name])}); "
            f"control off/off {statistics.median(controls[name]):6.1%}"
        )
    gateway_off = statistics.median(rates[("gateway", False)])
    print(
        f"signing alone: {signs:.0f} assertions/s in-process "
        f"({signs / gateway_off:.1f}x the gateway's request rate without assertions)"
    )


if __name__ == "__main__":
    main()
