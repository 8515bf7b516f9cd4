"""The package registry of ``examples/package_registry``, in Django, behind authgate's
WSGI middleware: public reads, authenticated writes, admin-only moderation.

Run it (the first start creates an admin key; ``authgate admin-key`` prints it)::

    python -m examples.django_registry.app

It listens on 127.0.0.1:8000 (``--port`` to change) with the standard library's WSGI
server; any WSGI server can serve ``examples.django_registry.app:application`` instead.
The whole project is this one module: settings, URLs and views.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any, cast
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import django
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from authgate import AuthgateWSGIMiddleware, Rule
from authgate.adapters.wsgi import principal_of
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import Settings

# The whole access policy, the FastAPI example's: reads are public, writes need a scope,
# moderation needs admin. Everything else is denied.
RULES = [
    Rule("GET", "/packages/**", public=True),
    Rule("POST", "/packages/*/approve", role="admin"),
    Rule("POST", "/packages/*/reject", role="admin"),
    Rule("POST", "/packages", scopes=["packages:write"]),
]

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
REGISTRY_KEY = "example.registry"

if not django_settings.configured:
    django_settings.configure(
        ROOT_URLCONF=__name__,
        # Requests are authenticated by authgate, with keys in headers: no cookies, so no
        # sessions and no CSRF middleware, and no database of Django's own.
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
        SECRET_KEY=secrets.token_urlsafe(50),
        APPEND_SLASH=False,
        DEBUG=False,
    )
    django.setup()


class Registry:
    """In memory, which is all an example needs; a lock because requests run in threads."""

    def __init__(self) -> None:
        self._packages: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def all(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(p) for _, p in sorted(self._packages.items())]

    def get(self, name: str) -> dict[str, str] | None:
        with self._lock:
            package = self._packages.get(name)
            return dict(package) if package else None

    def add(self, package: dict[str, str]) -> bool:
        with self._lock:
            if package["name"] in self._packages:
                return False
            self._packages[package["name"]] = package
            return True

    def set_status(self, name: str, status: str) -> dict[str, str] | None:
        with self._lock:
            package = self._packages.get(name)
            if package is not None:
                package["status"] = status
                return dict(package)
            return None


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _registry(request: HttpRequest) -> Registry:
    registry = request.META[REGISTRY_KEY]
    assert isinstance(registry, Registry)
    return registry


def _caller(request: HttpRequest) -> Principal | None:
    return principal_of(request.META)


@require_http_methods(["GET", "POST"])
def packages(request: HttpRequest) -> HttpResponse:
    registry = _registry(request)
    caller = _caller(request)
    if request.method == "GET":
        # Everyone sees approved packages; a signed-in caller also sees the queue.
        found = registry.all()
        shown = found if caller else [p for p in found if p["status"] == "approved"]
        return JsonResponse(shown, safe=False)
    # authgate's rule has already required packages:write; the view still names who.
    if caller is None or not caller.has_scopes({"packages:write"}):
        return _error(403, "The packages:write scope is needed.", "forbidden")
    try:
        body: Any = json.loads(request.body)
    except ValueError:
        return _error(400, "The body is not JSON.", "invalid_request")
    if not isinstance(body, dict) or set(body) - {"name", "version", "summary"}:
        return _error(422, "Give name, version and optionally summary.", "invalid_request")
    name, version = body.get("name"), body.get("version")
    summary = body.get("summary", "")
    if not (isinstance(name, str) and NAME.match(name)):
        return _error(422, "name: lowercase letters, digits, '.', '_' or '-'.", "invalid_request")
    if not (isinstance(version, str) and 0 < len(version) <= 32):
        return _error(422, "version: 1 to 32 characters.", "invalid_request")
    if not (isinstance(summary, str) and len(summary) <= 200):
        return _error(422, "summary: at most 200 characters.", "invalid_request")
    package = {
        "name": name,
        "version": version,
        "summary": summary,
        "status": "pending",
        "submitted_by": caller.name,
    }
    if not registry.add(package):
        return _error(409, f"{name!r} already exists.", "conflict")
    return JsonResponse(package, status=201)


@require_http_methods(["GET"])
def search(request: HttpRequest) -> HttpResponse:
    needle = request.GET.get("q", "").lower()
    return JsonResponse(
        [
            p
            for p in _registry(request).all()
            if p["status"] == "approved" and (needle in p["name"] or needle in p["summary"].lower())
        ],
        safe=False,
    )


@require_http_methods(["GET"])
def show(request: HttpRequest, name: str) -> HttpResponse:
    package = _registry(request).get(name)
    if package is None:
        return _error(404, f"No package named {name!r}.", "not_found")
    return JsonResponse(package)


def _moderate(status: str) -> Callable[[HttpRequest, str], HttpResponse]:
    @require_http_methods(["POST"])
    def view(request: HttpRequest, name: str) -> HttpResponse:
        caller = _caller(request)
        if caller is None or not caller.is_admin:
            return _error(403, "Only an admin may moderate.", "forbidden")
        package = _registry(request).set_status(name, status)
        if package is None:
            return _error(404, f"No package named {name!r}.", "not_found")
        return JsonResponse(package)

    return cast(Callable[[HttpRequest, str], HttpResponse], view)


urlpatterns = [
    path("packages", packages),
    path("packages/search", search),
    path("packages/<str:name>", show),
    path("packages/<str:name>/approve", _moderate("approved")),
    path("packages/<str:name>/reject", _moderate("rejected")),
]


def create_app(
    *, settings: Settings | None = None, runtime: Runtime | None = None
) -> AuthgateWSGIMiddleware:
    """Django's WSGI application with a registry of its own, behind authgate."""
    from django.core.wsgi import get_wsgi_application

    django_app = get_wsgi_application()
    registry = Registry()

    # Django's URLs are process-wide; each app built here hands its own store to the views.
    def with_registry(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        environ[REGISTRY_KEY] = registry
        return django_app(environ, start_response)

    return AuthgateWSGIMiddleware(with_registry, rules=RULES, settings=settings, runtime=runtime)


def __getattr__(name: str) -> WSGIApplication:
    # `examples.django_registry.app:application` builds the app (and its runtime, from
    # AUTHGATE_* and the data folder) only when asked, not on import.
    if name == "application":
        return create_app()
    raise AttributeError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description="The package registry, in Django.")
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    app = create_app()
    with make_server("127.0.0.1", port, app) as server:
        print(f"Serving on http://127.0.0.1:{port}/packages", flush=True)
        try:
            server.serve_forever()
        finally:
            app.close()


if __name__ == "__main__":
    main()
