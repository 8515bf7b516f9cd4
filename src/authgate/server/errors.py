"""Exception handlers: every error leaves as ``{"detail", "code"}``, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from authgate.errors import AuthgateError, InvalidRequest
from authgate.http import json_error

__all__ = ["install_error_handlers"]

log = logging.getLogger("authgate.server")

_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _authgate_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthgateError)
    status, headers, body = json_error(exc)
    return Response(body, status_code=status, headers=dict(headers))


def _validation_error(_request: Request, exc: Exception) -> Response:
    """A request that fails its schema (body, query or path): the error shape every other
    refusal has, its detail one sentence naming each field; ``errors`` keeps the list for
    programs that want it."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    sentence = "; ".join(_problem(problem["loc"], str(problem["msg"])) for problem in problems)
    body = {
        "detail": sentence or InvalidRequest.default_detail,
        "code": InvalidRequest.code,
        "errors": problems,
    }
    return JSONResponse(body, status_code=InvalidRequest.status)


_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header"}


def _problem(loc: list[Any], msg: str) -> str:
    where, *field = loc or ["body"]
    name = ".".join(str(part) for part in field)
    if not name:
        return f"the {where}: {msg}"
    if where == "body":
        # A message of our own validators names its field already.
        return msg if msg.startswith(name) else f"{name}: {msg}"
    return f"{_PLACES.get(str(where), str(where))} {name}: {msg}"


def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        {"detail": exc.detail, "code": code}, status_code=exc.status_code, headers=exc.headers
    )


def _unexpected_error(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse({"detail": "Internal server error.", "code": "internal_error"}, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AuthgateError, _authgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
