"""The audit log, filtered by actor (an email or an id), action, key and time, paged."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from authgate.console.pages import ConsoleRoute, render
from authgate.console.routes_keys import PAGE_SIZE, page_number
from authgate.console.visitors import Seen, runtime_of
from authgate.errors import InvalidRequest

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FILTERS = ("actor", "action", "key", "since", "until")


def _moment(text: str | None, label: str) -> datetime | None:
    """A date or a ``datetime-local`` value, read as UTC."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{label} must be a date such as 2026-12-01 or 2026-12-01T09:30."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@router.get("/console/audit")
def audit(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    given = {name: (request.query_params.get(name) or "").strip()[:320] for name in FILTERS}
    page = page_number(request)
    result = runtime.lifecycle.audit_log(
        found.principal,
        actor=given["actor"] or None,
        action=given["action"] or None,
        key=given["key"] or None,
        since=_moment(given["since"], "From"),
        until=_moment(given["until"], "Until"),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        source=found.source,
    )
    return render(
        request,
        "audit.html",
        visitor=found,
        events=result.events,
        page=page,
        more=result.next_offset is not None,
        filters=given,
    )
