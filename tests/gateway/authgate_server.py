"""A live authgate server (the real root app: middleware, token service, forward auth and,
when given an upstream, the gateway) with a few keys, for gateway and forward-auth tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authgate.manage.keys import Actor
from authgate.proxy.gateway import Gateway
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.support import live_server

# The classic layout: reads public, writes need a scope, approve/reject need admin; and
# an /api area any key with "read" may use.
RULES: list[dict[str, Any]] = [
    {"method": "GET", "path": "/public/**", "public": True},
    {"method": "GET", "path": "/packages/**", "public": True},
    {"method": "POST", "path": "/packages", "scopes": ["packages:write"]},
    {"method": "POST", "path": "/packages/*/approve", "role": "admin"},
    {"method": "*", "path": "/api/**", "scopes": ["read"]},
    {"method": "*", "path": "/ws/**", "scopes": ["read"]},
    {"method": "*", "path": "/**", "scopes": ["read"]},
]


@dataclass
class LiveAuthgate:
    url: str
    runtime: Runtime
    reader: str  # scopes: read
    writer: str  # scopes: read, packages:write
    reader_id: str
    writer_id: str


@contextmanager
def authgate_server(
    data_dir: Path, *, upstream: str | None = None, **settings: Any
) -> Iterator[LiveAuthgate]:
    values: dict[str, Any] = {"data_dir": data_dir, "rules": RULES, "access_log": False}
    values.update(settings)
    runtime = Runtime(load_settings(**values))
    runtime.start()
    try:
        actor = Actor("test", source="test")
        reader = runtime.keys.create(actor, name="reader", scopes=["read"])
        writer = runtime.keys.create(actor, name="writer", scopes=["read", "packages:write"])
        downstream = Gateway(upstream) if upstream is not None else None
        app = build_root_app(runtime, downstream=downstream)
        with live_server(app, proxy_headers=False) as url:
            yield LiveAuthgate(
                url, runtime, reader.token, writer.token, reader.record.id, writer.record.id
            )
    finally:
        runtime.close()
