"""ASGI in one place: its types, the scope keys authgate sets, a scope's request facts,
and sending an error.

Answers that leave a request body unread end the HTTP/1 connection.

A request that announces a body (``Content-Length`` above 0, or a ``Transfer-Encoding``)
owes the connection those bytes. When authgate answers without reading them (a refusal,
a 413, a route that never reads), an HTTP/1 server would read whatever comes next as that
body: a client that sent ``Expect: 100-continue`` never sends it (it already has its final
answer), so its next request on the pooled connection is swallowed as the body, or the
server waits for bytes that never come. ``Connection: close`` on such an answer ends the
connection after it instead; uvicorn, h11 and hypercorn close on it. HTTP/2 frames each
request on its own stream and forbids the header, so it is never added there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from authgate.errors import AuthgateError
from authgate.facts import RequestFacts
from authgate.hosts import AmbiguousHost, host_problem
from authgate.http import Rendered, json_error, render_error

__all__ = [
    "CONNECTION_CLOSE",
    "PRINCIPAL_SCOPE_KEY",
    "STATE_KEY",
    "ASGIApp",
    "CloseWhenBodyUnread",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "announces_body",
    "closing_if_unread",
    "encode_headers",
    "ends_connection",
    "facts_from_scope",
    "host_problem_of",
    "peer_of",
    "peer_port_of",
    "send_error",
    "server_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Where the middleware leaves the principal (``None``: anonymous on a public route), in
# the scope (and a WSGI environ), and in ``scope["state"]`` (``request.state``).
PRINCIPAL_SCOPE_KEY = "authgate.principal"
STATE_KEY = "authgate_principal"

Header = tuple[bytes, bytes]

CONNECTION_CLOSE: Header = (b"connection", b"close")


def announces_body(headers: Iterable[Header]) -> bool:
    """Whether the framing headers promise a body; an unreadable length counts as one."""
    for name, value in headers:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            try:
                if int(value) != 0:
                    return True
            except ValueError:
                return True
    return False


def ends_connection(scope: Scope) -> bool:
    """Whether an answer to this request, sent before its body was read, must end the
    connection: an HTTP/1 request that announced a body."""
    if not str(scope.get("http_version", "1.1")).startswith("1"):
        return False
    return announces_body(scope.get("headers", ()))


def closing_if_unread(
    scope: Scope, headers: Sequence[Header], *, body_read: bool = False
) -> list[Header]:
    """``headers``, plus ``Connection: close`` when the answer leaves the body unread."""
    if body_read or not ends_connection(scope):
        return list(headers)
    return [*headers, CONNECTION_CLOSE]


class CloseWhenBodyUnread:
    """ASGI wrapper: an answer that starts before the request's announced body has been
    read to its end says ``Connection: close`` (for apps, such as FastAPI's routes and
    exception handlers, that may answer without reading). Requests without a body pass
    straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not ends_connection(scope):
            await self.app(scope, receive, send)
            return
        body_read = False

        async def tracked_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [*message.get("headers", ()), CONNECTION_CLOSE]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, tracked_receive, closing_send)


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[Header]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def send_error(
    scope: Scope,
    send: Send,
    error: AuthgateError,
    *,
    method: str = "GET",
    render: Callable[[AuthgateError], Rendered] = json_error,
    body_read: bool = False,
    websocket: bool = False,
) -> int:
    """Answer ``error`` (rendered by ``authgate.http.render_error``: S3's XML for an
    ``S3Error``, else ``render``) and return the status sent. ``websocket``: refuse a
    handshake with the ``websocket.http.response`` extension's messages. An HTTP answer
    whose request body is unread (``body_read`` False) ends an HTTP/1 connection."""
    status, headers, body = render_error(error, method, render)
    prefix = "websocket.http.response" if websocket else "http.response"
    encoded = encode_headers(headers)
    if not websocket:
        encoded = closing_if_unread(scope, encoded, body_read=body_read)
    await send({"type": prefix + ".start", "status": status, "headers": encoded})
    await send({"type": prefix + ".body", "body": body})
    return status


def peer_of(scope: Mapping[str, Any]) -> str | None:
    """The socket's peer address, the only address that cannot be spoofed by a header."""
    client = scope.get("client")
    return str(client[0]) if client else None


def peer_port_of(scope: Mapping[str, Any]) -> int | None:
    client = scope.get("client")
    port = client[1] if client and len(client) > 1 else None
    return port if isinstance(port, int) else None


def server_of(scope: Mapping[str, Any]) -> tuple[str, int] | None:
    """The address and port the peer connected to (the server's socket), if an IP one."""
    server = scope.get("server")
    if not server or len(server) < 2 or not isinstance(server[1], int):
        return None  # a Unix socket, or a server that does not say
    return str(server[0]), server[1]


def facts_from_scope(scope: Mapping[str, Any]) -> RequestFacts:
    method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
    return RequestFacts.from_asgi_headers(
        method,
        scope.get("path", "/"),
        scope.get("headers", ()),
        query_string=scope.get("query_string", b""),
        raw_path=scope.get("raw_path"),
        peer=peer_of(scope),
        scheme=scope.get("scheme", "http"),
        peer_port=peer_port_of(scope),
        server=server_of(scope),
    )


def host_problem_of(scope: Mapping[str, Any]) -> AmbiguousHost | None:
    """``host_problem`` for an ASGI request: its ``Host`` headers and its raw target."""
    hosts = [value.decode("latin-1") for name, value in scope["headers"] if name.lower() == b"host"]
    raw: bytes | None = scope.get("raw_path")
    return host_problem(hosts, raw.decode("latin-1") if raw else None)
