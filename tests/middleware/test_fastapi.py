"""FastAPI: add_middleware just works (lifespan starts the runtime); scope dependencies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.adapters.fastapi import (
    CurrentPrincipal,
    OptionalPrincipal,
    RequireScopes,
    require_role,
)
from authgate.policy import Rule
from authgate.principal import Principal
from authgate.settings import Settings
from tests.middleware.conftest import admin_key, new_key
from tests.support import live_server

RULES = [
    Rule("GET", "/open", public=True),
    Rule("GET", "/openapi.json", public=True),
    Rule("*", "/**"),  # every other route needs a credential; the routes check scopes
]


def make_app(settings: Settings) -> FastAPI:
    app = FastAPI()

    @app.get("/open")
    async def open_route(caller: OptionalPrincipal) -> dict[str, Any]:
        return {"caller": caller.id if caller else None}

    @app.get("/me")
    async def me(caller: CurrentPrincipal) -> dict[str, Any]:
        return caller.as_dict()

    @app.post("/write", dependencies=[Depends(RequireScopes("items:write"))])
    async def write() -> dict[str, str]:
        return {"ok": "written"}

    @app.post("/approve")
    async def approve(
        admin: Annotated[Principal, Depends(require_role("admin"))],
    ) -> dict[str, str]:
        return {"by": admin.id}

    app.add_middleware(AuthgateMiddleware, rules=RULES, settings=settings)
    return app


def middleware_of(app: FastAPI) -> AuthgateMiddleware:
    layer: Any = app.middleware_stack
    while not isinstance(layer, AuthgateMiddleware):
        layer = layer.app
    return layer


def test_add_middleware_starts_and_stops_the_runtime(settings_for: Callable[..., Settings]) -> None:
    app = make_app(settings_for())
    with live_server(app) as url:
        middleware = middleware_of(app)
        assert middleware.runtime.authenticator.ready
        token = new_key(middleware.runtime, "writer", "items:write")
        reader = new_key(middleware.runtime, "reader", "items:read")
        admin = admin_key(middleware.runtime)
        with httpx.Client(base_url=url) as client:
            assert client.get("/open").json() == {"caller": None}
            assert client.get("/open", headers={"X-API-Key": token}).json()["caller"]
            assert client.get("/me").status_code == 401
            assert client.get("/me", headers={"X-API-Key": token}).json()["scopes"] == [
                "items:write"
            ]
            assert client.post("/write", headers={"X-API-Key": token}).json() == {"ok": "written"}
            refused = client.post("/write", headers={"X-API-Key": reader})
            assert refused.status_code == 403
            assert refused.json() == {
                "detail": "This needs the scope(s): items:write.",
                "code": "forbidden",
            }
            assert client.post("/approve", headers={"X-API-Key": token}).json() == {
                "detail": "This needs the admin role.",
                "code": "forbidden",
            }
            assert client.post("/approve", headers={"X-API-Key": admin}).json() == {"by": "admin"}
    assert not middleware.runtime.authenticator.ready


def test_the_schemes_show_in_openapi(settings_for: Callable[..., Settings]) -> None:
    app = make_app(settings_for())
    with live_server(app) as url:
        document = httpx.get(url + "/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"] == {"type": "http", "scheme": "bearer"}
    for path, method in [("/write", "post"), ("/approve", "post"), ("/me", "get")]:
        assert {"ApiKey": []} in document["paths"][path][method]["security"]
        assert {"Bearer": []} in document["paths"][path][method]["security"]
    assert "security" not in document["paths"]["/open"]["get"]


def test_an_app_without_lifespan_still_gets_a_started_runtime(
    settings_for: Callable[..., Settings],
) -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "no lifespan here"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    middleware = AuthgateMiddleware(plain, rules=[Rule("*", "/**", public=True)],
                                    settings=settings_for())  # fmt: skip
    with live_server(middleware) as url:
        assert middleware.runtime.authenticator.ready
        assert httpx.get(url + "/").text == "plain"
    assert not middleware.runtime.authenticator.ready


def test_without_a_lifespan_run_requests_get_503_and_a_warning(
    settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(settings_for())

    async def call() -> httpx.Response:
        # httpx's ASGI transport, like a server with lifespan off, never runs the lifespan.
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return await client.get("/open")

    response = asyncio.run(call())
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"
    assert "lifespan" in caplog.text
    middleware_of(app).runtime.store.close()


async def run_lifespan(app: Any) -> list[dict[str, Any]]:
    """Drive the lifespan protocol as a server does: startup, then shutdown if it started."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})

    await inbox.put({"type": "lifespan.startup"})
    with contextlib.suppress(Exception):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return sent


def test_a_runtime_that_cannot_start_fails_the_startup(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for()
    settings.data_dir.mkdir(exist_ok=True)
    (settings.data_dir / "admin.key").write_text("not a key\n")
    (settings.data_dir / "admin.key").chmod(0o600)
    app = make_app(settings)
    sent = asyncio.run(run_lifespan(app))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "admin key file" in sent[0]["message"]
    runtime = middleware_of(app).runtime
    assert not runtime.authenticator.ready
    runtime.store.close()


def test_cors_added_after_the_middleware_answers_preflights(
    settings_for: Callable[..., Settings],
) -> None:
    from fastapi.middleware.cors import CORSMiddleware

    app = make_app(settings_for())
    app.add_middleware(CORSMiddleware, allow_origins=["https://app.example"], allow_methods=["*"])
    with live_server(app) as url:
        preflight = httpx.options(
            url + "/write",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        refused = httpx.post(url + "/write", headers={"Origin": "https://app.example"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
