"""Two upstream apps that trust only what authgate signed, each run as its own process:

    python -m tests.assertion.upstream_apps fastapi|wsgi PORT JWKS_URL AUDIENCE

Both answer with the verified identity as JSON; anything else is their 401.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import uvicorn
from fastapi import Depends, FastAPI
from flask import Flask, request

from authgate.assertion import Assertion
from authgate.assertion.fastapi import AssertionRequired
from authgate.assertion.wsgi import ENVIRON_KEY, AssertionMiddleware


def _said(caller: Assertion) -> dict[str, Any]:
    return {
        "sub": caller.subject,
        "kind": caller.kind,
        "key_id": caller.key_id,
        "scopes": sorted(caller.scopes),
        "role": caller.role,
        "email": caller.email,
        "jti": caller.jti,
        "aud": caller.claims["aud"],
    }


def fastapi_app(jwks_url: str, audience: str) -> FastAPI:
    app = FastAPI()
    through_authgate = AssertionRequired(jwks_url=jwks_url, audience=audience)

    @app.get("/{path:path}")
    def whoami(path: str, caller: Assertion = Depends(through_authgate)) -> dict[str, Any]:
        return _said(caller)

    return app


def wsgi_app(jwks_url: str, audience: str) -> Flask:
    app = Flask("upstream")

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def whoami(path: str) -> str:
        return json.dumps(_said(request.environ[ENVIRON_KEY]))

    app.wsgi_app = AssertionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, jwks_url=jwks_url, audience=audience
    )
    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    kind, port, jwks_url, audience = sys.argv[1:5]
    if kind == "fastapi":
        uvicorn.run(
            fastapi_app(jwks_url, audience), host="127.0.0.1", port=int(port), log_level="warning"
        )
    else:
        with make_server(
            "127.0.0.1", int(port), wsgi_app(jwks_url, audience), handler_class=_Quiet
        ) as server:
            server.serve_forever()


if __name__ == "__main__":
    main()
