"""A test identity provider: keys made with joserfc, its JWKS served over real HTTP.

``TestIssuer`` runs the standard library's HTTP server in a thread and answers
``GET /jwks.json`` with its public keys and the cache headers a test sets; a test can
rotate the keys, take the server down (``outage``: 503, or ``stall``: no answer) and
count the fetches. ``sign`` makes a token with any of its keys, or with any header.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

ISSUER = "https://idp.example.test"
AUDIENCE = "https://api.example.test"


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig"})


def jwks_document(keys: list[Key]) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


class TestIssuer:
    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self.keys: list[Key] = [rsa_key("rsa-1"), ec_key("ec-1")]
        self.cache_headers: dict[str, str] = {"Cache-Control": "max-age=300"}
        self.status = 200
        self.stall = 0.0  # seconds to wait before answering
        self.fetches = 0
        self.body: bytes | None = None  # a raw answer instead of the key set
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    def key(self, kid: str) -> Key:
        return next(key for key in self.keys if key.kid == kid)

    def rsa(self, kid: str) -> RSAKey:
        key = self.key(kid)
        assert isinstance(key, RSAKey)
        return key

    def rotate(self, new: Key, *, drop: str | None = None) -> None:
        self.keys = [key for key in self.keys if key.kid != drop] + [new]

    def sign(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        kid: str = "rsa-1",
        alg: str | None = None,
        header: Mapping[str, Any] | None = None,
        key: Key | None = None,
        **extra: Any,
    ) -> str:
        """A token: the standard claims of this issuer (valid for five minutes), then
        ``claims`` and ``extra`` over them, signed with ``kid``'s key (or ``key``)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-42",
            "iat": now,
            "exp": now + 300,
        }
        body.update(claims or {})
        body.update(extra)
        signing = key or self.key(kid)
        if alg is None:
            alg = "RS256" if signing.key_type == "RSA" else "ES256"
        head: dict[str, Any] = {"alg": alg, "kid": kid}
        head.update(header or {})
        return jwt.encode(head, body, signing, algorithms=[alg])

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        self.fetches += 1
        if self.stall:
            time.sleep(self.stall)
        if self.status != 200:
            return self.status, {}, b"unavailable"
        body = self.body if self.body is not None else json.dumps(jwks_document(self.keys))
        data = body if isinstance(body, bytes) else body.encode()
        return 200, {"Content-Type": "application/json", **self.cache_headers}, data

    @contextmanager
    def serving(self) -> Iterator[TestIssuer]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                status, headers, data = issuer._answer()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._server = server
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
