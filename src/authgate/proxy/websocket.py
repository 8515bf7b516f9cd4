"""The WebSocket pump: frames both ways between the client and the upstream."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from authgate.adapters.scope import Message, Receive, Send

__all__ = ["pump_websocket"]

# The gateway's logger: operators filter on its name.
log = logging.getLogger("authgate.gateway")

# Close codes that name a situation but may not travel in a close frame (RFC 6455 7.4.1).
_UNSENDABLE_CLOSE = {1005: 1000, 1006: 1001, 1015: 1001}
_BAD_GATEWAY_CLOSE = 1014


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CLOSE.get(code, code)


async def pump_websocket(
    upstream: aiohttp.ClientWebSocketResponse[Any], receive: Receive, send: Send
) -> None:
    """Frames both ways until either side closes; the close code travels across."""

    async def client_to_upstream() -> None:
        while True:
            message: Message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await upstream.send_str(text)
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                code = _sendable(message.get("code"))
                reason = message.get("reason") or ""
                await upstream.close(code=code, message=reason.encode())
                return

    async def upstream_to_client() -> None:
        while True:
            msg = await upstream.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": msg.data})
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": msg.data})
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                code = _sendable(msg.data)
                await send({"type": "websocket.close", "code": code, "reason": msg.extra or ""})
                # Echo the upstream's code back, as the closing handshake expects.
                await upstream.close(code=code)
                return
            else:
                # The upstream went away without a closing handshake.
                await send({"type": "websocket.close", "code": _BAD_GATEWAY_CLOSE})
                return

    tasks = {
        asyncio.create_task(client_to_upstream()),
        asyncio.create_task(upstream_to_client()),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.debug("websocket pump ended: %r", result)
