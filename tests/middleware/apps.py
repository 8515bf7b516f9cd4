"""Small apps the middleware tests protect, recording what reached them."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from authgate.adapters.asgi import PRINCIPAL_SCOPE_KEY
from authgate.errors import Forbidden
from authgate.policy import Rule

RULES = [
    Rule("GET", "/public/**", public=True),
    Rule("*", "/private/**"),
    Rule("POST", "/items", scopes=["items:write"]),
    Rule("*", "/admin/**", role="admin"),
    Rule("GET", "/ws/open", public=True),
    Rule("GET", "/raises", public=True),
    Rule("GET", "/ws/**", scopes=["chat"]),
]


class Echo:
    """A Starlette app echoing the path it saw and the principal it was given."""

    def __init__(self) -> None:
        self.reached: list[str] = []
        self.ws_seen: list[dict[str, Any]] = []

        async def echo(request: Request) -> JSONResponse:
            self.reached.append(request.url.path)
            principal = request.state.authgate_principal
            assert principal is request.scope[PRINCIPAL_SCOPE_KEY]
            return JSONResponse(
                {
                    "path": request.url.path,
                    "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
                    "principal": principal.id if principal else None,
                    "kind": principal.kind if principal else None,
                }
            )

        async def raises(_request: Request) -> JSONResponse:
            raise Forbidden("raised by the app")

        async def ws(websocket: WebSocket) -> None:
            principal = websocket.scope[PRINCIPAL_SCOPE_KEY]
            self.ws_seen.append(
                {
                    "subprotocols": list(websocket.scope.get("subprotocols", [])),
                    "headers": dict(websocket.headers),
                    "principal": principal.id if principal else None,
                }
            )
            offered = websocket.scope.get("subprotocols", [])
            await websocket.accept(subprotocol="chat" if "chat" in offered else None)
            await websocket.send_json({"principal": principal.id if principal else None})
            message = await websocket.receive_text()
            await websocket.send_text("echo:" + message)
            await websocket.close()

        self.app = Starlette(
            routes=[
                Route("/raises", raises),
                WebSocketRoute("/ws/{name:path}", ws),
                Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            ]
        )
