"""Run by ``tests/test_lean_install.py`` in a child interpreter, so that nothing the test
suite itself imported is in ``sys.modules``: serves a WSGI app behind the middleware on
the standard library's server, asks it twice with the standard library's client, and
prints, as JSON, what was answered and which optional modules got imported.

``--missing`` (for an install without the extras) also reports what authgate says when a
setting needs an extra that is not installed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

# A server, a client, or a Redis or PostgreSQL driver: what the base install leaves out.
OPTIONAL = ("uvicorn", "aiohttp", "httpx", "redis", "psycopg", "asyncpg", "typer", "rich")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def hello(_environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> None:
    data_dir = Path(sys.argv[1])
    os.environ["AUTHGATE_DATA_DIR"] = str(data_dir)
    os.environ["AUTHGATE_LOCALHOST_BYPASS"] = "off"

    import authgate.adapters.asgi
    import authgate.adapters.fastapi
    import authgate.adapters.s3
    import authgate.adapters.wsgi
    from authgate import AuthgateMiddleware, AuthgateWSGIMiddleware

    assert AuthgateMiddleware is authgate.adapters.asgi.AuthgateMiddleware
    app = AuthgateWSGIMiddleware(hello)
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hello"
    try:
        anonymous = status(url, {})
        admin_key = (data_dir / "admin.key").read_text().strip()
        admin = status(url, {"X-API-Key": admin_key})
    finally:
        server.shutdown()
        app.close()
    report: dict[str, object] = {
        "anonymous": anonymous,
        "admin": admin,
        "loaded": sorted(name for name in OPTIONAL if name in sys.modules),
    }
    if "--missing" in sys.argv:
        report["missing"] = missing_extras(data_dir)
    print(json.dumps(report))


def missing_extras(data_dir: Path) -> dict[str, str]:
    from authgate import ConfigurationError, Runtime, Settings

    said: dict[str, str] = {}
    for setting, settings in (
        ("redis_url", Settings(data_dir=data_dir / "r", redis_url="redis://127.0.0.1:6379/0")),
        (
            "database_url",
            Settings(data_dir=data_dir / "p", database_url="postgresql://127.0.0.1:5432/test"),
        ),
    ):
        try:
            Runtime(settings)
        except ConfigurationError as exc:
            said[setting] = exc.detail
        else:
            said[setting] = "accepted"
    return said


if __name__ == "__main__":
    main()
