"""HTTP throughput: authgate's middleware and gateway beside a bare app and common peers.

Run: .venv/bin/python bench/bench_http.py [--rounds 3] [--duration 5] [--connections 64]

Every server is one uvicorn worker (uvloop, httptools, no access log) in a process of its
own; load comes from another process: wrk when it is installed (Debian: ``apt-get
install wrk``), else a small aiohttp load generator. Cases:

- bare:        a Starlette hello endpoint, nothing in front;
- middleware:  the same behind ``AuthgateMiddleware``, with a valid key;
- gateway:     ``authgate serve --upstream`` in front of the bare server (a second
               process), with a valid key: authentication and a proxy hop;
- handwritten: the bare app behind a hand-written pure-ASGI check (SHA-256 and a set
               lookup): the floor of a key check that keeps digests, as authgate does;
- dictlookup:  the same with the raw header looked up in a dict of plaintext tokens: the
               issue's "about 93 %" reference, and what authgate must not do (secrets
               kept in memory as they are); it shows what the per-request hash costs;
- fastapi:     a FastAPI route with a hand-written ``APIKeyHeader`` dependency;
- basehttp:    a ``BaseHTTPMiddleware`` bearer check (the pattern authgate avoids);
- gateway-noauth: the ``Gateway`` app alone, no middleware: the proxy hop by itself;
- aiohttp:     a plain aiohttp pass-through proxy with no authentication, in front of the
               same bare server: the floor the gateway is measured against.

Servers run on the first CPU and the load generator on the others (``--no-pin`` leaves
placement to the OS, which on a small machine lets the two take turns on one core).

On a shared virtual machine the speed of the whole machine can swing by a third within
seconds, which no interleaving of separate measurements quite cancels. ``--pairs N``
adds N rounds of same-moment pairs for the in-process cases: bare and the case, each a
fresh pair of processes, both on the server CPU and loaded at once, so that whatever the
machine does, it does to both; sharing the CPU, each serves in inverse proportion to what
a request costs it. A second bare server measured the same way is the control: its ratio
shows how much a pair of processes differs when nothing else does.

Targets: middleware >= 90 % of bare; gateway >= aiohttp. The access log (one line per
request) is off for the authgate cases, as uvicorn's is for every case; it is a
measured extra of its own. A measurement, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELLO = b"hello, world"
CASES = [
    "bare",
    "middleware",
    "handwritten",
    "dictlookup",
    "fastapi",
    "basehttp",
    "gateway",
    "gateway-noauth",
    "aiohttp",
]


# -- the servers (each runs in its own process: bench_http.py --serve CASE) ---------------


def hello_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(_request: Any) -> PlainTextResponse:
        return PlainTextResponse(HELLO)

    return Starlette(routes=[Route("/hello", hello)])


def authgate_runtime(data_dir: str) -> Any:
    from authgate.runtime import Runtime
    from authgate.settings import load_settings

    settings = load_settings(data_dir=Path(data_dir), access_log=False, localhost_bypass="off")
    runtime = Runtime(settings)
    runtime.start()
    return runtime


def bench_rules() -> list[Any]:
    from authgate.policy import Rule

    return [Rule("GET", "/hello", scopes=["read"])]


def fastapi_app(token: str) -> Any:
    import secrets

    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import APIKeyHeader

    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def check(key: str | None = Depends(header)) -> str:
        if key is None or not secrets.compare_digest(key, token):
            raise HTTPException(status_code=401, detail="invalid key")
        return key

    app = FastAPI()

    @app.get("/hello", dependencies=[Depends(check)])
    async def hello() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse(HELLO)

    return app


def basehttp_app(token: str) -> Any:
    import secrets

    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse

    async def bearer_check(request: Any, call_next: Any) -> Any:
        value = request.headers.get("authorization", "")
        if not value.startswith("Bearer ") or not secrets.compare_digest(value[7:], token):
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return await call_next(request)

    app = hello_app()
    app.add_middleware(BaseHTTPMiddleware, dispatch=bearer_check)
    return app


def handwritten_app(token: str) -> Any:
    """The floor of pure-ASGI key checking: a SHA-256 and a set lookup, nothing else (no
    rules, scopes, expiry, revocation, usage or logging)."""
    import hashlib

    inner = hello_app()
    digests = {hashlib.sha256(token.encode()).hexdigest()}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-api-key" and hashlib.sha256(value).hexdigest() in digests:
                    break
            else:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await inner(scope, receive, send)

    return app


def dictlookup_app(token: str) -> Any:
    """The cheapest check there is, and an unsafe one: plaintext tokens in a dict.

    Written out like ``handwritten_app`` rather than sharing a body with it: each peer is
    measured as the code a developer would write, and a shared body would put a call
    (the check passed in) into both of the requests being timed."""
    inner = hello_app()
    tokens = {token.encode(): "bench"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-api-key" and value in tokens:
                    break
            else:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await inner(scope, receive, send)

    return app


def run_aiohttp_proxy(port: int, upstream: str) -> None:
    """A pass-through proxy written the usual way with aiohttp alone: no auth at all."""
    import aiohttp
    from aiohttp import web

    hop = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "host"}

    async def startup(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )

    async def cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        async with session.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        ) as upstream_response:
            body = await upstream_response.read()
            out = {
                k: v
                for k, v in upstream_response.headers.items()
                if k.lower() not in hop and k.lower() != "content-length"
            }
            return web.Response(status=upstream_response.status, body=body, headers=out)

    app = web.Application()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", proxy)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve(case: str, port: int, upstream: str, data_dir: str, token: str) -> None:
    import uvicorn

    if case == "aiohttp":
        run_aiohttp_proxy(port, upstream)
        return
    if case == "bare":
        app = hello_app()
    elif case == "fastapi":
        app = fastapi_app(token)
    elif case == "basehttp":
        app = basehttp_app(token)
    elif case == "handwritten":
        app = handwritten_app(token)
    elif case == "dictlookup":
        app = dictlookup_app(token)
    elif case == "middleware":
        from authgate.adapters.asgi import AuthgateMiddleware

        app = AuthgateMiddleware(
            hello_app(), runtime=authgate_runtime(data_dir), rules=bench_rules()
        )
    elif case == "gateway-noauth":
        from authgate.proxy.gateway import Gateway

        app = Gateway(upstream)
    else:
        raise SystemExit(f"unknown case {case}")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
    )


# -- the driver ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


@dataclass
class Server:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


GATEWAY_CONFIG = """
[[rules]]
method = "GET"
path = "/hello"
scopes = ["read"]
"""


def serve_command(case: str, port: int, upstream: str, data_dir: str, token: str) -> list[str]:
    if case == "gateway":
        # The product as an operator runs it: the real command, the real root app.
        config = Path(data_dir).parent / "gateway.toml"
        config.write_text(GATEWAY_CONFIG)
        authgate = str(Path(sys.executable).parent / "authgate")
        return [
            authgate, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", data_dir, "--config", str(config), "--upstream", upstream,
            "--no-access-log", "--localhost-bypass", "off", "--tls", "off",
        ]  # fmt: skip
    command = [sys.executable, __file__, "--serve", case, "--port", str(port)]
    return command + ["--upstream", upstream, "--data-dir", data_dir, "--token", token]


def cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load CPUs): the servers on the first CPU, the load generator on the
    others, so the two never take turns on one core. ``None``: leave it to the OS."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


SERVER_CPUS: set[int] | None = None


def _pin_server() -> None:
    if SERVER_CPUS is not None:
        os.sched_setaffinity(0, SERVER_CPUS)


@contextmanager
def server(
    case: str,
    *,
    upstream: str = "",
    data_dir: str = "",
    token: str = "",
    command: list[str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """One server process on the server CPUs: ``case`` of this file, or ``command``
    listening on ``port``."""
    port = port or free_port()
    if command is None:
        command = serve_command(case, port, upstream, data_dir, token)
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{case}-", suffix=".log", delete=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=log, preexec_fn=_pin_server
    )
    try:
        try:
            wait_for(port)
        except RuntimeError:
            raise RuntimeError(f"{case} did not start:\n{Path(log.name).read_text()}") from None
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        os.unlink(log.name)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_wrk(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> tuple[float, int]:
    command = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{url}: {non_2xx.group(1)} failed responses\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if not rate or not count:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(rate.group(1)), int(count.group(1))


def run_python_load(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> tuple[float, int]:
    """The fallback load generator: ``connections`` keep-alive clients on one event loop."""
    import aiohttp

    async def main() -> tuple[float, int]:
        count = 0
        failed = 0
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def worker() -> None:
                nonlocal count, failed
                while time.monotonic() < deadline:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            failed += 1
                        count += 1

            start = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.monotonic() - start
        if failed:
            raise RuntimeError(f"{url}: {failed} failed responses")
        return count / elapsed, count

    return asyncio.run(main())


def make_key(data_dir: str) -> str:
    from authgate.manage.keys import Actor
    from authgate.runtime import Runtime
    from authgate.settings import load_settings

    runtime = Runtime(load_settings(data_dir=Path(data_dir)))
    try:
        runtime.prepare_store()
        created = runtime.keys.create(Actor("bench"), name="bench", scopes=["read"])
        return created.token
    finally:
        runtime.store.close()


def headers_for(case: str, token: str) -> dict[str, str]:
    if case in ("bare", "aiohttp", "gateway-noauth"):
        return {}
    if case == "basehttp":
        return {"Authorization": f"Bearer {token}"}
    return {"X-API-Key": token}


# Cases that are one process serving /hello themselves (no upstream): they can share the
# server CPU with a bare server for a same-moment pair.
PAIRABLE = ("bare", "middleware", "handwritten", "dictlookup", "fastapi", "basehttp")


def same_moment_ratio(
    case: str, data_dir: str, token: str, seconds: float, connections: int, bare_first: bool
) -> float:
    """``case``'s throughput over bare's while both are loaded at once, each by its own
    wrk, on fresh processes (so that no one process's luck of memory layout persists)."""
    with server("bare") as bare, server(case, data_dir=data_dir, token=token) as other:
        targets = [(bare, {}), (other, headers_for(case, token))]
        for target, headers in targets:  # warm-up, one at a time
            run_wrk(f"{target.url}/hello", headers, 1.0, connections)
        if not bare_first:
            targets.reverse()
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(run_wrk, f"{target.url}/hello", headers, seconds, connections // 2)
                for target, headers in targets
            ]
            rates = [future.result()[0] for future in futures]
    if not bare_first:
        rates.reverse()
    return rates[1] / rates[0]


def run_pairs(
    cases: list[str], rounds: int, data_dir: str, token: str, seconds: float, connections: int
) -> dict[str, list[float]]:
    ratios: dict[str, list[float]] = {case: [] for case in cases}
    for index in range(rounds):
        for case in cases:
            ratios[case].append(
                same_moment_ratio(case, data_dir, token, seconds, connections, index % 2 == 0)
            )
    return ratios


def middle_half(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 4:
        return None
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[0], quartiles[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per case")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--seed", type=int, default=1, help="seeds the order of each round")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="also N rounds of same-moment pairs with bare (needs wrk and two CPUs)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the OS place servers and load on any CPU"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream, args.data_dir, args.token)
        return

    global SERVER_CPUS
    SERVER_CPUS, load_cpus = cpu_split(not args.no_pin)
    if load_cpus is not None:
        os.sched_setaffinity(0, load_cpus)  # the load generator (wrk inherits it)
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    runs: dict[str, list[float]] = {case: [] for case in cases}
    cpu: dict[str, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="authgate-bench-") as tmp, ExitStack() as stack:
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir, 0o700)
        token = make_key(data_dir)
        bare = stack.enter_context(server("bare"))
        servers = {"bare": bare}
        for case in cases:
            if case != "bare":
                servers[case] = stack.enter_context(
                    server(case, upstream=bare.url, data_dir=data_dir, token=token)
                )
        load = run_wrk if shutil.which("wrk") else run_python_load
        for case in cases:  # warm-up, not counted
            load(f"{servers[case].url}/hello", headers_for(case, token), 1.0, args.connections)
        # Rounds interleave the cases, and each case keeps its best round: a burst of
        # other work on the machine then costs one measurement, not one case. Each round
        # takes the cases in a new order (seeded, so runs are comparable): in a fixed
        # order, whatever drifts within a round would favour the cases measured first.
        order = random.Random(args.seed)
        for _ in range(args.rounds):
            for case in order.sample(cases, len(cases)):
                pid = servers[case].pid
                before = cpu_seconds(pid)
                rate, count = load(
                    f"{servers[case].url}/hello",
                    headers_for(case, token),
                    args.duration,
                    args.connections,
                )
                after = cpu_seconds(pid)
                runs[case].append(rate)
                if before is not None and after is not None and count:
                    cpu[case].append((after - before) / count * 1e6)
        stack.close()  # the pairs start servers of their own
        pair_cases = [case for case in cases if case in PAIRABLE]
        pairs: dict[str, list[float]] = {}
        if args.pairs and (load is not run_wrk or SERVER_CPUS is None):
            print("same-moment pairs skipped: they need wrk and two CPUs", file=sys.stderr)
        elif args.pairs:
            pairs = run_pairs(
                pair_cases, args.pairs, data_dir, token, args.duration, args.connections
            )
    results = {case: max(values) for case, values in runs.items()}
    cpu_per_request = {case: min(values) for case, values in cpu.items() if values}
    # Each round measures every case within seconds of the others, so the ratio of a
    # case to bare in one round is little touched by the machine's slower spells; the
    # median over rounds is the steadier figure when the best rounds disagree.
    ratios = {
        case: [v / b for v, b in zip(values, runs["bare"], strict=True)]
        for case, values in runs.items()
        if "bare" in runs
    }
    paired = {case: statistics.median(values) for case, values in ratios.items()}
    # The middle half of the rounds' ratios: how far one round can be trusted here.
    spread = {case: middle for case, values in ratios.items() if (middle := middle_half(values))}

    if args.json:
        print(
            json.dumps(
                {
                    "best": results,
                    "runs": runs,
                    "cpu_us": cpu_per_request,
                    "paired": paired,
                    "paired_middle_half": spread,
                    "same_moment_pairs": pairs,
                },
                indent=2,
            )
        )
        return
    loader = "wrk" if shutil.which("wrk") else "python (aiohttp)"
    base = results.get("bare")
    placement = (
        f"servers on CPU {sorted(SERVER_CPUS)}, load on CPU {sorted(load_cpus or ())}"
        if SERVER_CPUS
        else "unpinned"
    )
    print(
        f"load: {loader}, {args.connections} connections, "
        f"best of {args.rounds} x {args.duration:g} s per case, {placement}"
    )
    print(
        f"{'case':<15} {'requests/s':>11} {'vs bare':>8} {'per round':>10} {'middle half':>12}"
        f" {'CPU µs/req':>11}   all rounds"
    )
    for case, value in results.items():
        ratio = f"{value / base:8.0%}" if base else "       -"
        median = f"{paired[case]:10.0%}" if case in paired else "         -"
        middle = f"{spread[case][0]:.0%}-{spread[case][1]:.0%}" if case in spread else "-"
        per = f"{cpu_per_request[case]:11.0f}" if case in cpu_per_request else "          -"
        rounds = ", ".join(f"{v:,.0f}" for v in runs[case])
        print(f"{case:<15} {value:>11,.0f} {ratio} {median} {middle:>12} {per}   {rounds}")
    print(
        "vs bare: best round over best round; per round: median of the rounds' ratios, "
        "and the middle half of them"
    )
    if pairs:
        print(
            f"\nsame-moment pairs: {args.pairs} rounds, each a fresh bare server and the case "
            f"on CPU {sorted(SERVER_CPUS or ())}, loaded at once ({args.connections // 2} "
            "connections each)"
        )
        print(f"{'case':<15} {'vs bare':>8} {'middle half':>12}   all rounds")
        for case, values in pairs.items():
            middle = middle_half(values)
            shown = f"{middle[0]:.0%}-{middle[1]:.0%}" if middle else "-"
            label = "bare (control)" if case == "bare" else case
            rounds = ", ".join(f"{v:.0%}" for v in values)
            print(f"{label:<15} {statistics.median(values):8.0%} {shown:>12}   {rounds}")
        print("vs bare: the median of the rounds' ratios")
    if "gateway" in results and "aiohttp" in results:
        per_round = statistics.median(
            g / a for g, a in zip(runs["gateway"], runs["aiohttp"], strict=True)
        )
        print(
            f"gateway / aiohttp proxy: {results['gateway'] / results['aiohttp']:.0%} "
            f"(per round: {per_round:.0%})"
        )


if __name__ == "__main__":
    main()
