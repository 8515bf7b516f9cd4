"""The console's protective headers on every answer under it, including those no
console route renders: the framework's own 404 and 405, and refusals made before
routing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authgate.console.pages import SECURITY_HEADERS

__all__ = ["ConsoleHeaders"]


class ConsoleHeaders:
    """Adds whichever of the console's headers an answer under ``<prefix>/console``
    lacks; a route's own value (the static files' ``Cache-Control``) stays."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.root = f"{prefix}/console"
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in SECURITY_HEADERS.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.root or path.startswith(f"{self.root}/")):
            await self.app(scope, receive, send)
            return

        async def send_protected(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                missing = [(name, value) for name, value in self.headers if name not in present]
                if missing:
                    message = {**message, "headers": [*message.get("headers", []), *missing]}
            await send(message)

        await self.app(scope, receive, send_protected)
