"""The console's stylesheet and script, from the package (nothing is fetched)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from authgate.console.pages import SECURITY_HEADERS, STATIC
from authgate.errors import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}


@router.get("/console/static/{name}")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound()
    response = FileResponse(STATIC / name, media_type=media_type)
    response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-cache"})
    return response
