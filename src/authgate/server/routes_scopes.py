"""``/scopes``: the catalogue every token request is checked against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from authgate.server.callers import Caller
from authgate.server.deps import RuntimeDep
from authgate.server.models import ScopeOut
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["tokens"])


@router.get(
    "/scopes",
    response_model=list[ScopeOut],
    summary="The scope catalogue",
    description=(
        "Every scope a token may carry (the built-in ones and the `scopes` setting's), "
        "the roles that may grant each, and the defaults. A token request naming any "
        "other scope is refused (422)."
    ),
    responses=errors(401),
)
def list_scopes(runtime: RuntimeDep, _principal: Caller) -> list[dict[str, Any]]:
    return runtime.roles.describe()
