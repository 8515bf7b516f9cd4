"""``/sessions``: the console's sessions, listed and ended (``authgate.manage.sessions``
decides who sees which)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from authgate.manage.sessions import session_dict
from authgate.server.callers import Caller, ClientAddress
from authgate.server.deps import RuntimeDep
from authgate.server.models import SessionOut
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["sessions"])

SessionId = Annotated[str, Path(min_length=1, max_length=64, description="The session's id.")]
WHO = (
    "Admins see every session; a `users:manage` holder those of users at or below their "
    "role; anyone else their own user's. The operator account's sessions are admins' alone."
)


@router.get(
    "/sessions",
    response_model=list[SessionOut],
    summary="Live console sessions, newest first",
    description=WHO + " Naming a `user` needs `users:manage` or the admin role.",
    responses=errors(401, 403, 404, 422),
)
def list_sessions(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    user: Annotated[
        str | None,
        Query(min_length=1, max_length=320, description="Only this user's: an id or an email."),
    ] = None,
) -> list[dict[str, Any]]:
    user_id = None
    if user is not None:
        user_id = runtime.lifecycle.get_user(principal, user, source).id
    return [session_dict(record) for record in runtime.sessions.list_for(principal, user_id)]


@router.delete(
    "/sessions/{session_id}",
    response_model=SessionOut,
    summary="End a console session",
    description=WHO + " A session the caller may not see is the 404 of a missing id; one "
    "already over is 409.",
    responses=errors(401, 404, 409, 422),
)
def end_session(
    runtime: RuntimeDep, principal: Caller, source: ClientAddress, session_id: SessionId
) -> dict[str, Any]:
    actor = runtime.lifecycle.actor(principal, source)
    return session_dict(runtime.sessions.end_for(principal, actor, session_id))
