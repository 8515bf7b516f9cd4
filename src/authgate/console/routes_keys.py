"""Keys: list (search, paging), create (the token shown once), rotate, revoke, and each
key's hourly use over the last week."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from authgate.console.charts import hourly_chart
from authgate.console.pages import ConsoleRoute, redirect, render
from authgate.console.visitors import Post, Seen, Visitor, runtime_of
from authgate.errors import InvalidRequest
from authgate.manage.keys import CreatedKey
from authgate.manage.roles import MANAGE_TOKENS
from authgate.runtime import Runtime

__all__ = ["PAGE_SIZE", "page_number", "router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
MAX_SEARCH = 64
CHART_DAYS = 7


def page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise InvalidRequest("page must be a whole number from 1.")
    return int(text)


def _sees_everyone(runtime: Runtime, found: Visitor) -> bool:
    return runtime.roles.holds(found.principal, MANAGE_TOKENS)


@router.get("/console/keys")
def keys(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    search = (request.query_params.get("q") or "").strip()[:MAX_SEARCH] or None
    page = page_number(request)
    everyone = _sees_everyone(runtime, found)
    records, total = runtime.lifecycle.page_tokens(
        found.principal,
        everyone=everyone,
        search=search,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        source=found.source,
    )
    return render(
        request,
        "keys.html",
        visitor=found,
        keys=records,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        search=search or "",
        everyone=everyone,
        grantable=sorted(runtime.roles.grantable_by(found.principal)),
        expiry=runtime.roles.expiry,
    )


def _created(request: Request, found: Visitor, created: CreatedKey, what: str) -> Response:
    return render(request, "key_created.html", visitor=found, created=created, what=what)


@router.post("/console/keys")
def create_key(request: Request, post: Post) -> Response:
    runtime = runtime_of(request)
    found, form = post.visitor, post.form
    name = form.text("name")
    scopes = form.many("scopes") or None
    days = form.number("expires_in_days", label="Expiry (days)")
    if found.user is not None:
        created = runtime.lifecycle.create_own_token(
            found.user, name=name, scopes=scopes, expires_in_days=days, source=found.source
        )
    else:
        created = runtime.lifecycle.create_service_token(
            found.principal, name=name, scopes=scopes, expires_in_days=days, source=found.source
        )
    return _created(request, found, created, "created")


@router.get("/console/keys/{key_id}")
def key(request: Request, found: Seen, key_id: str) -> Response:
    runtime = runtime_of(request)
    record = runtime.lifecycle.get_token(found.principal, key_id, found.source)
    now = runtime.clock()
    since = now - timedelta(days=CHART_DAYS)
    chart = hourly_chart(runtime.store.usage_by_hour(record.id, since), since, now)
    return render(
        request,
        "key.html",
        visitor=found,
        key=record,
        live=record.is_live(now),
        chart=chart,
    )


@router.post("/console/keys/{key_id}/rotate")
def rotate_key(request: Request, post: Post, key_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    minutes = post.form.number("grace_minutes", label="Grace period (minutes)") or 0
    created = runtime.lifecycle.rotate_token(
        found.principal, key_id, grace=timedelta(minutes=minutes), source=found.source
    )
    return _created(request, found, created, "rotated")


@router.post("/console/keys/{key_id}/revoke")
def revoke_key(request: Request, post: Post, key_id: str) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    runtime.lifecycle.revoke_token(found.principal, key_id, found.source)
    return redirect(request, f"keys/{key_id}", done="revoked")
