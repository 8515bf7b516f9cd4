"""The token service application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from authgate import __version__, console, metrics
from authgate.adapters.scope import CloseWhenBodyUnread
from authgate.console.headers import ConsoleHeaders
from authgate.runtime import Runtime
from authgate.server import (
    routes_access_keys,
    routes_audit,
    routes_core,
    routes_jwks,
    routes_leaks,
    routes_metrics,
    routes_scopes,
    routes_sessions,
    routes_settings,
    routes_tokens,
    routes_users,
    routes_verify,
)
from authgate.server.errors import install_error_handlers

__all__ = ["create_app"]


def create_app(
    runtime: Runtime, *, manage_runtime: bool = True, listen_host: str | None = None
) -> FastAPI:
    """The service app under ``settings.http_prefix``, the console included.

    With ``manage_runtime`` the app starts the runtime (migrations, admin key) in its
    lifespan; until that is done every authenticated route answers 503. ``listen_host``:
    where the server listens, which the localhost bypass's ``auto`` needs (the console
    opens without a login only for a local peer the bypass admits).
    """
    prefix = runtime.settings.http_prefix

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await run_in_threadpool(runtime.start)
        try:
            yield
        finally:
            if manage_runtime:
                await run_in_threadpool(runtime.stop)

    app = FastAPI(
        title="authgate",
        version=__version__,
        lifespan=lifespan,
        docs_url=f"{prefix}/docs",
        redoc_url=None,
        openapi_url=f"{prefix}/openapi.json",
    )
    app.state.runtime = runtime
    app.state.listen_host = listen_host
    # The server extra brings prometheus-client: the service always serves its metrics.
    metrics.enable()
    install_error_handlers(app)
    # Routes and error handlers answer (413, 401, 422...) without always reading the body.
    app.add_middleware(CloseWhenBodyUnread)
    # The framework's own 404 and 405 under the console carry the console's headers too.
    app.add_middleware(ConsoleHeaders, prefix=prefix)
    app.include_router(routes_core.router, prefix=f"{prefix}/v1")
    app.include_router(routes_access_keys.router, prefix=f"{prefix}/v1")
    app.include_router(routes_verify.router, prefix=f"{prefix}/v1")
    app.include_router(routes_tokens.router, prefix=f"{prefix}/v1")
    app.include_router(routes_scopes.router, prefix=f"{prefix}/v1")
    app.include_router(routes_users.router, prefix=f"{prefix}/v1")
    app.include_router(routes_audit.router, prefix=f"{prefix}/v1")
    app.include_router(routes_leaks.router, prefix=f"{prefix}/v1")
    app.include_router(routes_sessions.router, prefix=f"{prefix}/v1")
    app.include_router(routes_settings.router, prefix=f"{prefix}/v1")
    app.include_router(console.router, prefix=prefix)
    app.include_router(routes_metrics.router, prefix=prefix)
    app.include_router(routes_jwks.router, prefix=prefix)
    return app
