"""Forward auth and the gateway beside nginx, Caddy and a plain aiohttp proxy, in one run.

Run: .venv/bin/python bench/bench_forward.py [--quick] [--rounds 2] [--duration 3]

Every server runs on the first CPU and wrk on the second (``taskset``-style affinity, set
by ``bench_http``'s helpers), all started side by side before the first measurement:

- hello:         a bare Starlette hello (one uvicorn worker): the upstream of every path;
- verify:        ``authgate serve`` (no upstream), ``GET /authgate/v1/verify`` as a proxy
                 asks it, with a valid key;
- nginx:         nginx (one worker) → hello, no auth;
- nginx+verify:  nginx ``auth_request`` → verify, then → hello;
- caddy:         Caddy (``reverse_proxy``) → hello, no auth;
- caddy+verify:  Caddy ``forward_auth`` → verify, then → hello;
- aiohttp:       a plain aiohttp pass-through proxy → hello, no auth (``bench_http``'s);
- gateway:       ``authgate serve --upstream`` → hello, with a valid key.

Then ``--workers 2`` against ``--workers 1`` of the gateway, each measured with the
servers and wrk sharing both CPUs (the machine a small host really is).

Each case keeps its best round; the ratios are of those, from the same run. nginx and
Caddy here use their own minimal configurations (keep-alive to both upstreams), not the
documented ones, which carry TLS and header hygiene a throughput figure does not need.
A measurement, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import bench_http
from bench_http import (
    GATEWAY_CONFIG,
    Server,
    cpu_seconds,
    cpu_split,
    free_port,
    make_key,
    run_wrk,
    server,
)

VERIFY = "/authgate/v1/verify"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    upstream hello {{ server 127.0.0.1:{hello}; keepalive 64; }}
    upstream authgate {{ server 127.0.0.1:{verify}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{auth};
        location = /_authgate {{
            internal;
            proxy_pass http://authgate{verify_path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }}
        location / {{
            auth_request /_authgate;
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-API-Key "";
        }}
    }}
}}
"""

CADDYFILE = """
{{
    admin off
    auto_https off
}}
http://127.0.0.1:{plain} {{
    reverse_proxy 127.0.0.1:{hello}
}}
http://127.0.0.1:{auth} {{
    route {{
        forward_auth 127.0.0.1:{verify} {{
            uri {verify_path}
            copy_headers X-Authgate-Key-Id X-Authgate-Key-Name X-Authgate-Scopes
        }}
        request_header -X-API-Key
        reverse_proxy 127.0.0.1:{hello}
    }}
}}
"""

# (name, URL path, needs the key): the order of the table.
CASES = [
    ("hello", "/hello", False),
    ("verify", VERIFY, True),
    ("nginx", "/hello", False),
    ("nginx+verify", "/hello", True),
    ("caddy", "/hello", False),
    ("caddy+verify", "/hello", True),
    ("aiohttp", "/hello", False),
    ("gateway", "/hello", True),
]

RATIOS = [
    ("verify / hello", "verify", "hello"),
    ("nginx+verify / nginx", "nginx+verify", "nginx"),
    ("caddy+verify / caddy", "caddy+verify", "caddy"),
    ("gateway / aiohttp proxy", "gateway", "aiohttp"),
    ("gateway / nginx", "gateway", "nginx"),
]


# Every request verify sees comes from the one proxy in front of it, whose connections
# would otherwise count against one client address's cap (as docs/gateway.md advises).
VERIFY_CONFIG = "max_connections_per_client = 0\n" + GATEWAY_CONFIG


def authgate_command(port: int, data_dir: str, *extra: str) -> list[str]:
    """``authgate serve`` as an operator runs it, with the bench's one rule."""
    config = Path(data_dir).parent / "gateway.toml"
    config.write_text(VERIFY_CONFIG)
    authgate = str(Path(sys.executable).parent / "authgate")
    return [
        authgate, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", data_dir, "--config", str(config),
        "--no-access-log", "--localhost-bypass", "off", "--tls", "off", *extra,
    ]  # fmt: skip


def proxy_ports(stack: ExitStack, tmp: str, hello: Server, verify: Server) -> dict[str, str]:
    """Start nginx and Caddy, each with a plain and an ``+verify`` listener."""
    ports = {
        "hello": hello.url.rsplit(":", 1)[1],
        "verify": verify.url.rsplit(":", 1)[1],
        "verify_path": VERIFY,
        "tmp": tmp,
    }
    urls: dict[str, str] = {}
    for name, template, binary in (
        ("nginx", NGINX_CONF, "nginx"),
        ("caddy", CADDYFILE, "caddy"),
    ):
        if shutil.which(binary) is None:
            print(f"{binary} is not installed: its rows are left out", file=sys.stderr)
            continue
        plain, auth = free_port(), free_port()
        config = Path(tmp) / f"{name}.conf"
        config.write_text(template.format(plain=plain, auth=auth, **ports))
        if name == "nginx":
            command = ["nginx", "-p", tmp, "-c", str(config)]
        else:
            command = ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]
        stack.enter_context(server(name, command=command, port=auth))
        bench_http.wait_for(plain)
        urls[name] = f"http://127.0.0.1:{plain}"
        urls[f"{name}+verify"] = f"http://127.0.0.1:{auth}"
    return urls


def headers_for(case: str, path: str, token: str | None) -> dict[str, str]:
    headers = {"X-API-Key": token} if token else {}
    if case == "verify":
        # What a proxy sends: the original request's method and target.
        headers |= {"X-Original-Method": "GET", "X-Original-URI": "/hello"}
    return headers


def measure_rounds(
    urls: dict[str, str], pids: dict[str, int], token: str, args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, float]]:
    """Best req/s of each case and its server's CPU µs per request (own process only)."""
    cases = [case for case in CASES if case[0] in urls]
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, path, keyed in cases:  # warm-up
        try:
            run_wrk(urls[name] + path, headers_for(name, path, token if keyed else None), 1, 64)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}") from None
    order = random.Random(1)
    for _ in range(args.rounds):
        for name, path, keyed in order.sample(cases, len(cases)):
            pid = pids.get(name)
            before = cpu_seconds(pid) if pid else None
            rate, count = run_wrk(
                urls[name] + path,
                headers_for(name, path, token if keyed else None),
                args.duration,
                args.connections,
            )
            after = cpu_seconds(pid) if pid else None
            best[name] = max(best.get(name, 0.0), rate)
            if before is not None and after is not None and count:
                per = (after - before) / count * 1e6
                cpu[name] = min(cpu.get(name, per), per)
    return best, cpu


def measure_workers(data_dir: str, token: str, args: argparse.Namespace) -> dict[int, float]:
    """The gateway with 1 and 2 workers, before a fresh hello upstream, with the servers
    and wrk all sharing both CPUs."""
    all_cpus = os.sched_getaffinity(0) | (bench_http.SERVER_CPUS or set())
    os.sched_setaffinity(0, all_cpus)
    bench_http.SERVER_CPUS = all_cpus
    rates: dict[int, float] = {}
    headers = {"X-API-Key": token}
    with server("bare") as hello:
        for _ in range(args.rounds):
            for workers in (1, 2):
                port = free_port()
                command = authgate_command(
                    port, data_dir, "--upstream", hello.url, "--workers", str(workers)
                )
                with server(f"gateway-{workers}", command=command, port=port) as gateway:
                    url = f"{gateway.url}/hello"
                    run_wrk(url, headers, 1, args.connections)  # warm every worker
                    rate, _count = run_wrk(url, headers, args.duration, args.connections)
                rates[workers] = max(rates.get(workers, 0.0), rate)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s per case")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-workers", action="store_true", help="skip --workers 2 vs 1")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    if shutil.which("wrk") is None:
        sys.exit("bench_forward needs wrk (Debian: apt-get install wrk)")
    server_cpus, load_cpus = cpu_split(True)
    if server_cpus is None or load_cpus is None:
        sys.exit("bench_forward needs two CPUs: one for the servers, one for wrk")
    bench_http.SERVER_CPUS = server_cpus
    os.sched_setaffinity(0, load_cpus)  # wrk inherits it

    with tempfile.TemporaryDirectory(prefix="authgate-bench-") as tmp, ExitStack() as stack:
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir, 0o700)
        token = make_key(data_dir)
        hello = stack.enter_context(server("bare"))
        verify_port = free_port()
        verify = stack.enter_context(
            server("verify", command=authgate_command(verify_port, data_dir), port=verify_port)
        )
        aiohttp_proxy = stack.enter_context(server("aiohttp", upstream=hello.url))
        gateway_port = free_port()
        gateway = stack.enter_context(
            server(
                "gateway",
                command=authgate_command(gateway_port, data_dir, "--upstream", hello.url),
                port=gateway_port,
            )
        )
        urls = {
            "hello": hello.url,
            "verify": verify.url,
            "aiohttp": aiohttp_proxy.url,
            "gateway": gateway.url,
        }
        urls |= proxy_ports(stack, tmp, hello, verify)
        pids = {"hello": hello.pid, "verify": verify.pid, "aiohttp": aiohttp_proxy.pid}
        pids["gateway"] = gateway.pid
        best, cpu = measure_rounds(urls, pids, token, args)
        stack.close()
        workers = {} if args.no_workers else measure_workers(data_dir, token, args)

    print(
        f"servers on CPU {sorted(server_cpus)}, wrk on CPU {sorted(load_cpus)}, "
        f"{args.connections} connections, best of {args.rounds} x {args.duration:g} s\n"
    )
    print("| path | req/s | vs nginx alone | server CPU µs/req |")
    print("| --- | --- | --- | --- |")
    nginx = best.get("nginx")
    for name, _path, _keyed in CASES:
        if name not in best:
            continue
        versus = f"{best[name] / nginx:.2f}" if nginx else "-"
        per = f"{cpu[name]:.0f}" if name in cpu else "-"
        print(f"| {name} | {best[name]:,.0f} | {versus} | {per} |")
    print("\n| ratio | value |")
    print("| --- | --- |")
    for label, top, bottom in RATIOS:
        if top in best and bottom in best:
            print(f"| {label} | {best[top] / best[bottom]:.2f} |")
    if "gateway" in cpu and "aiohttp" in cpu:
        # Steadier than req/s on a busy machine: each process's own CPU per request.
        by_cpu = cpu["aiohttp"] / cpu["gateway"]
        print(f"| aiohttp proxy / gateway, CPU µs per request | {by_cpu:.2f} |")
    if workers:
        print(f"| gateway --workers 2 / --workers 1 (both CPUs) | {workers[2] / workers[1]:.2f} |")
        print(f"\n--workers 1: {workers[1]:,.0f} req/s, --workers 2: {workers[2]:,.0f} req/s")


if __name__ == "__main__":
    main()
