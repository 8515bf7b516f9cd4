"""What the localhost bypass's owner lookup costs, per request without a credential.

Run: .venv/bin/python bench/bench_peercred.py [--sockets 0,1000]

Prints, with that many extra loopback connections open, the time of one
``is_local_request`` by each reader: the exact sock_diag lookup (the ASGI path, which
knows the address the peer connected to) and the scan of /proc/net/tcp{,6} (WSGI, or
where netlink is refused), best of five rounds. Linux only. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack

from authgate.facts import RequestFacts
from authgate.localhost import is_local_request
from authgate.peercred import SocketOwners


def best_of(rounds: int, count: int, call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - started) / count)
    return best


def measure(extra: int) -> None:
    with ExitStack() as stack:
        listener = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=extra + 8))
        server = listener.getsockname()
        for _ in range(extra):
            stack.enter_context(socket.create_connection(server))
            stack.enter_context(listener.accept()[0])
        client = stack.enter_context(socket.create_connection(server))
        port = client.getsockname()[1]
        known = RequestFacts(
            method="GET", path="/", peer="127.0.0.1", peer_port=port, server=server
        )
        unknown = RequestFacts(method="GET", path="/", peer="127.0.0.1", peer_port=port)
        proc = SocketOwners(netlink=False)
        assert is_local_request(known) and is_local_request(unknown, proc)
        netlink = best_of(5, 2000, lambda: is_local_request(known))
        scan = best_of(5, 20, lambda: is_local_request(unknown, proc))
        print(f"{extra:>6} extra sockets: sock_diag {netlink * 1e6:8.1f} µs", end=", ")
        print(f"/proc {scan * 1e6:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", default="0,1000")
    for extra in (int(n) for n in parser.parse_args().sockets.split(",")):
        measure(extra)


if __name__ == "__main__":
    main()
