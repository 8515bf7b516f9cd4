"""The settings page: what authgate runs with, where each value comes from, and the
ones saved here (``authgate.manage.stored_settings``), secrets redacted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from authgate.console.forms import Form
from authgate.console.pages import ConsoleRoute, redirect, render
from authgate.console.visitors import Post, Seen, runtime_of
from authgate.errors import InvalidRequest
from authgate.manage.stored_settings import REDACTED, SettingView

__all__ = ["FIELD_PREFIX", "as_text", "changes_from", "from_text", "router"]

# Form fields are named "setting-<name>": a setting called "scopes" must not be read as
# the key form's list of scopes.
FIELD_PREFIX = "setting-"

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def as_text(value: Any) -> str:
    """A setting's value as its form field shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return "\n".join(f"{name}: {', '.join(items)}" for name, items in value.items())
    return str(value)


def from_text(view: SettingView, text: str) -> Any:
    """The form's text as the setting's value ("" clears it)."""
    text = text.strip()
    if not text or (view.secret and text == REDACTED):
        return text
    if isinstance(view.value, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(view.value, dict):
        return _role_lines(text)
    if isinstance(view.value, int) and not isinstance(view.value, bool):
        if not text.isdigit():
            raise InvalidRequest(f"{view.name} must be a whole number.")
        return int(text)
    return text


def _role_lines(text: str) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        role, sep, scopes = line.partition(":")
        if not sep or not role.strip():
            raise InvalidRequest(
                f"role_scopes: write one role per line as 'role: scope, scope' ({line.strip()!r})."
            )
        roles[role.strip()] = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    return roles


def _shown(view: SettingView) -> str:
    return as_text(view.saved if view.saved is not None else view.value)


def changes_from(form: Form, views: list[SettingView]) -> dict[str, Any]:
    """Only the fields whose text differs from what the page showed: a form sends every
    field, and saving must not pin the defaults it merely displayed."""
    changes: dict[str, Any] = {}
    for view in views:
        if not view.editable:
            continue
        sent = form.raw(FIELD_PREFIX + view.name)
        if sent is None or sent.strip() == _shown(view).strip():
            continue
        changes[view.name] = from_text(view, sent) or None
    return changes


@router.get("/console/settings")
def settings(request: Request, found: Seen) -> Response:
    runtime = runtime_of(request)
    views = runtime.stored_settings.view(found.principal)
    return render(
        request,
        "settings.html",
        visitor=found,
        settings=views,
        shown=_shown,
        field_prefix=FIELD_PREFIX,
    )


@router.post("/console/settings")
def save_settings(request: Request, post: Post) -> Response:
    runtime = runtime_of(request)
    found = post.visitor
    views = runtime.stored_settings.view(found.principal)
    changes = changes_from(post.form, views)
    if changes:
        runtime.stored_settings.update(found.principal, found.actor, changes)
    return redirect(request, "settings", done="saved" if changes else "unchanged")
