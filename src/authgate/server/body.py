"""Reading a JSON request body strictly: capped in size, one value per key, no guessing.

FastAPI's own body parsing keeps the last of two equal keys (``{"scopes": [], "scopes":
["tokens:manage"]}``), so a proxy or a log and authgate could disagree about what was
asked. Bodies here are read once, capped while reading (a missing or false
``Content-Length`` does not lift the cap), and parsed with a hook that refuses duplicates.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from authgate.errors import AuthgateError, InvalidRequest

__all__ = [
    "BadRequest",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "json_body",
    "read_capped",
    "request_body",
]

Model = TypeVar("Model", bound=BaseModel)


class BadRequest(AuthgateError):
    status = 400
    code = "bad_request"
    default_detail = "The request body cannot be read."


class PayloadTooLarge(AuthgateError):
    status = 413
    code = "too_large"
    default_detail = "The request body is too large."


class UnsupportedMediaType(AuthgateError):
    status = 415
    code = "unsupported_media_type"
    default_detail = "Send the body as JSON, with Content-Type: application/json."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"The JSON body repeats the key {key!r}; send each key once.")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise BadRequest(f"The JSON body contains {name}, which JSON does not allow.")


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text.") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno})."
        ) from None
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python will convert
        raise BadRequest(f"The request body is not usable JSON: {exc}.") from None


async def read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("The Content-Length header is not a number.")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def request_body(
    request: Request, model: type[Model], *, max_bytes: int, optional: bool = False
) -> Model:
    """The body as ``model``: 413 over the cap, 415 not JSON, 400 unreadable, 422 invalid."""
    raw = await read_capped(request, max_bytes)
    if not raw.strip():
        if not optional:
            raise InvalidRequest("The request body is empty: send a JSON object.")
        data: Any = {}
    else:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType()
        data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not {_kind(data)}.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


def json_body(model: type[Model], *, optional: bool = False) -> Any:
    """A FastAPI dependency reading ``model`` with :func:`request_body`."""

    async def dependency(request: Request) -> Model:
        max_bytes: int = request.app.state.runtime.settings.max_body_bytes
        return await request_body(request, model, max_bytes=max_bytes, optional=optional)

    return Depends(dependency)


def body_openapi(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The ``requestBody`` FastAPI cannot infer for a body it does not parse itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
