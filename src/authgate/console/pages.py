"""Rendering the console's pages: Jinja2 templates shipped in the package, every answer
with the same protective headers, and errors rendered once, as a page.

Jinja2 because pages are server-rendered with autoescaping and template inheritance,
and nothing needs a build step; the little script there is (copy buttons, confirmations)
is one static file, so the Content-Security-Policy allows no inline script at all.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

from authgate import __version__
from authgate.console.visitors import LoginRequired, Visitor, set_browser_cookie
from authgate.errors import AuthgateError

__all__ = [
    "STATIC",
    "ConsoleRoute",
    "console_path",
    "error_headers",
    "redirect",
    "redirect_to",
    "render",
]

HERE = Path(__file__).parent
STATIC = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": under it a browser sends "Origin: null" with every form post,
    # which the same-origin check must refuse. "same-origin" sends the real Origin to
    # the console and no referrer to any other site.
    "Referrer-Policy": "same-origin",
    # Pages can hold a token shown once: never kept by the browser or a proxy.
    "Cache-Control": "no-store",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _code_spans(text: str) -> markupsafe.Markup:
    """A setting's description as docs/configuration.md shows it: its `backticked`
    names in <code>, everything else escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: show the text as it is
        return markupsafe.escape(text)
    return markupsafe.Markup("").join(
        markupsafe.Markup("<code>{}</code>").format(part) if index % 2 else markupsafe.escape(part)
        for index, part in enumerate(parts)
    )


_env.filters["when"] = _when
_env.filters["code_spans"] = _code_spans
_env.globals["version"] = __version__


def console_path(request: Request, tail: str = "") -> str:
    """A path under the console, wherever the service is mounted."""
    prefix: str = request.app.state.runtime.settings.http_prefix
    return f"{prefix}/console/{tail.lstrip('/')}"


def _with_headers(request: Request, response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    set_browser_cookie(request, response)
    return response


def render(
    request: Request,
    template: str,
    *,
    visitor: Visitor | None,
    status: int = 200,
    **context: Any,
) -> Response:
    # Which fixed notice to show after a redirect (base.html knows them by name).
    context.setdefault("done", request.query_params.get("done"))
    body = _env.get_template(template).render(
        path=lambda tail="": console_path(request, tail),
        visitor=visitor,
        current=request.url.path,
        now=datetime.now(UTC),
        **context,
    )
    return _with_headers(request, HTMLResponse(body, status_code=status))


def redirect(request: Request, tail: str, *, done: str | None = None) -> Response:
    """303 to a console page after a change; ``done`` names one of the fixed notices the
    page knows (never free text from the URL)."""
    target = console_path(request, tail)
    if done is not None:
        target += ("&" if "?" in target else "?") + "done=" + quote(done)
    return _with_headers(request, RedirectResponse(target, status_code=303))


def redirect_to(request: Request, path: str) -> Response:
    """303 to ``path``, already checked to be a console page."""
    return _with_headers(request, RedirectResponse(path, status_code=303))


def _error_page(request: Request, error: AuthgateError) -> Response:
    if isinstance(error, LoginRequired) and request.method in {"GET", "HEAD"}:
        back = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return redirect(request, f"login?next={back}")
    response = render(request, "error.html", visitor=None, status=error.status, error=error)
    response.headers.update(error_headers(error))
    return response


def error_headers(error: AuthgateError) -> dict[str, str]:
    """An error's own headers a page carries (``Retry-After``...): not the API's
    ``WWW-Authenticate`` challenge, which would make a browser ask for a password."""
    return {name: value for name, value in error.headers.items() if name != "WWW-Authenticate"}


class ConsoleRoute(APIRoute):
    """Console routes render ``AuthgateError`` as a page (the service's other routes
    answer JSON): one renderer for this medium."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthgateError as error:
                return _error_page(request, error)

        return handle
