"""Run the gateway behind the stand-in auth in a process of its own, so a test can read
its memory from /proc: ``python -m tests.gateway.serve_gateway UPSTREAM PORT``."""

from __future__ import annotations

import sys

import uvicorn

from authgate.gateway import Gateway
from tests.gateway.conftest import StandInAuth

if __name__ == "__main__":
    upstream, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(
        StandInAuth(Gateway(upstream)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=False,
    )
