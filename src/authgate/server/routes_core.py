"""Health (liveness), readiness, info and whoami."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authgate import __version__
from authgate.errors import NotReady
from authgate.server.deps import CurrentPrincipal, RuntimeDep

router = APIRouter(tags=["service"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process serves. It asks no dependency, so a load balancer or an
    orchestrator never restarts an instance for an outage elsewhere; ``/ready`` says
    whether to send it traffic."""
    return {"status": "ok"}


@router.get(
    "/ready",
    responses={503: {"description": "A dependency fails: which one, why and since when"}},
)
async def ready(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Readiness: started, store and Redis answering within their deadline, disk room."""
    readiness = runtime.readiness
    timeout = runtime.settings.ready_timeout_seconds
    threads = _probe_threads(request)
    failures: dict[str, str | None] = {}

    async def probe(name: str, check: Callable[[], None]) -> None:
        failures[name] = await _run_probe(check, timeout, threads)

    async with anyio.create_task_group() as group:
        for name, check in readiness.probes().items():
            group.start_soon(probe, name, check)
    problems = [
        problem
        for name, failure in failures.items()
        if (problem := readiness.observe(name, failure)) is not None
    ]
    if not problems:
        return JSONResponse({"status": "ready"})
    now = runtime.clock()
    detail = "; ".join(f"{problem.dependency}: {problem.detail}" for problem in problems)
    body = {
        "status": "not_ready",
        "detail": f"authgate is not ready: {detail}",
        "code": NotReady.code,
        "failing": [problem.as_dict(now) for problem in problems],
    }
    return JSONResponse(body, status_code=503)


# Probes run on threads of their own count, so probes stuck on a hung dependency never
# take the worker threads requests need; past the deadline a probe is abandoned.
_PROBE_THREADS = 4


def _probe_threads(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "probe_threads", None)
    if limiter is None:
        limiter = state.probe_threads = anyio.CapacityLimiter(_PROBE_THREADS)
    return limiter


async def _run_probe(
    check: Callable[[], None], timeout: float, threads: anyio.CapacityLimiter
) -> str | None:
    with anyio.move_on_after(timeout):
        try:
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True, limiter=threads)
        except NotReady as exc:
            return exc.detail
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return None
    return f"no answer within {timeout:g} s"


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
