"""A small upstream service for gateway tests: it reports what it received."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

CHUNK = 64 * 1024

# What the upstream saw finish: completed uploads and WebSocket closes, for assertions.
EVENTS: list[tuple[str, object]] = []


def pattern(size: int) -> Iterator[bytes]:
    """Deterministic bytes, generated on the fly: never the whole body at once."""
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def pattern_digest(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern(size):
        digest.update(piece)
    return digest.hexdigest()


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
            ],
            "body": body.decode("latin-1"),
        },
        headers={"x-upstream": "yes", "set-cookie": "session=abc; Path=/"},
    )


async def upload(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    headers = dict(request.headers)
    EVENTS.append(("upload", size))
    return JSONResponse(
        {
            "size": size,
            "sha256": digest.hexdigest(),
            "content_length": headers.get("content-length"),
            "transfer_encoding": headers.get("transfer-encoding"),
        }
    )


async def download(request: Request) -> Response:
    size = int(request.query_params.get("size", "0"))

    async def body() -> AsyncIterator[bytes]:
        for piece in pattern(size):
            yield piece

    headers = {"content-length": str(size)} if request.query_params.get("length") != "no" else {}
    return StreamingResponse(body(), headers=headers, media_type="application/octet-stream")


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("seconds", "5")))
    return JSONResponse({"slow": True})


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return Response(b"", status_code=code, headers={"location": "/elsewhere"})


async def gzip_body(request: Request) -> Response:
    import gzip

    return Response(
        gzip.compress(b"compressed bytes stay compressed"),
        headers={"content-encoding": "gzip", "content-type": "text/plain"},
    )


class Broken:
    """Promises a megabyte, sends a little, then ends the response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000000")],
            }
        )
        await send({"type": "http.response.body", "body": b"x" * 200_000, "more_body": True})


class WatchedDownload:
    """Streams ``size`` bytes and records how many it had sent when the gateway hung up
    (servers drop writes after a disconnect, so only receive() tells)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = int(scope["query_string"].decode().partition("=")[2])
        sent = 0
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            EVENTS.append(("download-gone", (size, sent)))
            gone.set()

        watcher = asyncio.create_task(watch())
        headers = [(b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in pattern(size):
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent += len(piece)
            # Once the peer is gone, uvicorn's send() returns at once without suspending:
            # yield, or the watcher never runs and the loop makes all ``size`` bytes.
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
        watcher.cancel()


async def ws_echo(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="chat" if "chat" in offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                EVENTS.append(("ws-closed", message.get("code")))
                return
            text = message.get("text")
            if text is not None:
                if text.startswith("close:"):
                    await websocket.close(code=int(text.split(":")[1]), reason="bye")
                    return
                if text == "headers":
                    await websocket.send_json(
                        {
                            "headers": [
                                [k.decode("latin-1"), v.decode("latin-1")]
                                for k, v in websocket.scope["headers"]
                            ],
                            "subprotocols": offered,
                        }
                    )
                    continue
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message.get("bytes") or b"")
    except WebSocketDisconnect:
        return


def make_upstream() -> Starlette:
    return Starlette(
        routes=[
            Route("/upload", upload, methods=["POST", "PUT"]),
            Route("/download", download),
            Route("/slow", slow),
            Route("/status/{code}", status),
            Route("/gzip", gzip_body),
            Route("/broken", Broken()),
            Route("/watched-download", WatchedDownload()),
            WebSocketRoute("/ws", ws_echo),
            Route("/{path:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )


@contextmanager
def resetting_upstream() -> Iterator[str]:
    """A raw TCP server that answers with headers and part of a body, then resets (RST)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n"
                    b"content-type: application/octet-stream\r\n\r\n" + b"y" * 100_000
                )
                # SO_LINGER 0: close() sends RST instead of FIN.
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def hwm_bytes(pid: int) -> int:
    """The process's peak resident size so far (VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")
