"""``/audit``: the audit log, newest first, filtered and paginated (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from authgate.server.callers import Caller, ClientAddress
from authgate.server.deps import RuntimeDep
from authgate.server.models import AuditPageOut
from authgate.server.paging import MAX_OFFSET, MAX_PAGE
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["audit"])


def _aware(moment: datetime | None) -> datetime | None:
    # A time without a zone is read as UTC, the zone every stored event carries.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "/audit",
    response_model=AuditPageOut,
    summary="The audit log",
    description="Admin only. Newest first; `next_offset` is the offset of the next page.",
    responses=errors(401, 403, 422),
)
def audit_log(
    runtime: RuntimeDep,
    principal: Caller,
    source: ClientAddress,
    actor: Annotated[
        str | None,
        Query(max_length=320, description="Who acted: a user's email or id, a key id, `cli`."),
    ] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. key.revoke")] = None,
    key: Annotated[str | None, Query(max_length=64, description="The target's id.")] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    page = runtime.lifecycle.audit_log(
        principal,
        actor=actor,
        action=action,
        key=key,
        since=_aware(since),
        until=_aware(until),
        limit=limit,
        offset=offset,
        source=source,
    )
    return {"events": [event.as_dict() for event in page.events], "next_offset": page.next_offset}
