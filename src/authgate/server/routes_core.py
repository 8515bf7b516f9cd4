"""Health, info and whoami."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from authgate import __version__
from authgate.errors import NotReady
from authgate.server.deps import CurrentPrincipal, RuntimeDep

router = APIRouter(tags=["service"])


@router.get("/health", responses={503: {"description": "The store cannot be reached"}})
async def health(runtime: RuntimeDep) -> JSONResponse:
    if not runtime.authenticator.ready:
        body = {"status": "starting", "detail": NotReady.default_detail, "code": NotReady.code}
        return JSONResponse(body, status_code=503)
    try:
        await run_in_threadpool(runtime.store.ping)
    except NotReady as exc:
        return JSONResponse({"status": "unavailable", "detail": exc.detail, "code": exc.code}, 503)
    return JSONResponse({"status": "ok"})


@router.get("/info")
async def info(runtime: RuntimeDep) -> dict[str, Any]:
    return {
        "name": "authgate",
        "version": __version__,
        "authentication": "enabled" if runtime.settings.auth_enabled else "disabled",
    }


@router.get("/whoami", responses={401: {"description": "Missing or invalid credentials"}})
async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
    return principal.as_dict()
