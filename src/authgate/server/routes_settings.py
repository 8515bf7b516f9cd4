"""``/settings``: the settings kept in the store, read and changed by admins; secrets
redacted (``authgate.manage.stored_settings``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from authgate.errors import InvalidRequest
from authgate.server.body import parse_json, read_capped
from authgate.server.callers import Caller, ClientAddress
from authgate.server.deps import RuntimeDep
from authgate.server.models import SettingOut
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["settings"])

ABOUT = (
    "Admins only. Precedence, highest first: environment variables, the config file, "
    "these saved values, the defaults; a setting the environment or the file sets is "
    "not editable here (409). Saved values apply when each instance next starts."
)


@router.get(
    "/settings",
    response_model=list[SettingOut],
    summary="The settings an operator may change while running",
    description=ABOUT + " Secrets come back as `********`.",
    responses=errors(401, 403),
)
def get_settings(runtime: RuntimeDep, principal: Caller) -> list[dict[str, Any]]:
    return [view.as_dict() for view in runtime.stored_settings.view(principal)]


@router.patch(
    "/settings",
    response_model=list[SettingOut],
    summary="Change saved settings",
    description=ABOUT
    + " Send a JSON object of the settings to change: a setting left out is untouched, "
    "`null` (or an empty string) clears a saved value, and a secret sent back as "
    "`********` keeps what is stored. Every change is audited (secrets as changed).",
    responses=errors(400, 401, 403, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def patch_settings(
    request: Request, runtime: RuntimeDep, principal: Caller, source: ClientAddress
) -> list[dict[str, Any]]:
    raw = await read_capped(request, runtime.settings.max_body_bytes)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidRequest("Send the settings as a JSON object (Content-Type: application/json).")
    changes = parse_json(raw)
    if not isinstance(changes, dict):
        raise InvalidRequest("The request body must be a JSON object of settings.")
    actor = runtime.lifecycle.actor(principal, source)
    views = runtime.stored_settings.update(principal, actor, changes)
    return [view.as_dict() for view in views]
