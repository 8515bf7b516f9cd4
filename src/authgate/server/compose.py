"""The server's root app: the token service under the reserved prefix, the rest downstream.

One ``AuthgateMiddleware`` wraps everything, so one policy decides every request: the
service's own rules come first (a few public routes; everything else under the prefix
needs a credential and the routes check roles themselves), then the operator's rules
for the downstream app (the gateway's upstream). The localhost bypass never applies
under the prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from authgate.accesslog import AccessLog
from authgate.adapters.asgi import AuthgateMiddleware, default_rules
from authgate.adapters.forward_auth import VERIFY_PATH, ForwardAuth
from authgate.adapters.scope import ASGIApp, Message, Receive, Scope, Send, send_error
from authgate.errors import NotFound
from authgate.policy import Rule
from authgate.runtime import Runtime
from authgate.server.app import create_app

__all__ = ["build_root_app", "service_rules"]


def service_rules(prefix: str) -> list[Rule]:
    """The token service's own rules, placed before the operator's."""
    return [
        Rule("GET", f"{prefix}/v1/health", public=True),
        Rule("GET", f"{prefix}/v1/ready", public=True),
        Rule("GET", f"{prefix}/v1/info", public=True),
        Rule("POST", f"{prefix}/v1/tokens", public=True),
        Rule("GET", f"{prefix}/docs/**", public=True),
        Rule("GET", f"{prefix}/openapi.json", public=True),
        # The assertion keys' public halves: what upstreams need before they trust anyone.
        Rule("GET", f"{prefix}/.well-known/jwks.json", public=True),
        # The console signs its visitors in itself (a session cookie, or the bypass).
        Rule("*", f"{prefix}/console", public=True),
        Rule("*", f"{prefix}/console/**", public=True),
        # Forward auth evaluates the proxied request against the rules itself.
        Rule("*", f"{prefix}{VERIFY_PATH}", public=True),
        Rule("*", f"{prefix}/**"),
    ]


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    await send_error(scope, send, NotFound())


class _Router:
    """Prefix dispatch; the prefix is compared case-insensitively, like the rules."""

    def __init__(self, prefix: str, service: ASGIApp, downstream: ASGIApp | None) -> None:
        self.prefix = prefix.lower()
        self.service = service
        self.downstream = downstream or _not_found
        self.lifespan_apps: list[ASGIApp] = [service]
        if downstream is not None:
            self.lifespan_apps.append(downstream)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _fan_out_lifespan(self.lifespan_apps, scope, receive, send)
            return
        path = scope["path"].lower()
        if path == self.prefix or path.startswith(self.prefix + "/"):
            await self.service(scope, receive, send)
        else:
            await self.downstream(scope, receive, send)


async def _drive(
    app: ASGIApp, scope: Scope, inbox: asyncio.Queue[Message], outbox: asyncio.Queue[Message]
) -> None:
    received = False

    async def receive() -> Message:
        nonlocal received
        received = True
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:
        # An app that refuses the lifespan scope before reading it simply has none.
        kind = "lifespan.failed" if received else "lifespan.unsupported"
        await outbox.put({"type": kind, "message": str(exc)})
    else:
        # Returned: nothing more will come from it (this also unblocks a waiting step).
        await outbox.put({"type": "lifespan.unsupported"})


async def _fan_out_lifespan(
    apps: Sequence[ASGIApp], scope: Scope, receive: Receive, send: Send
) -> None:
    """Run the lifespan of each app in turn (start in order, stop in reverse)."""
    inboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in apps]
    outboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in apps]
    tasks = [
        asyncio.ensure_future(_drive(app, scope, inbox, outbox))
        for app, inbox, outbox in zip(apps, inboxes, outboxes, strict=True)
    ]
    live = [True] * len(apps)

    async def step(message: Message, order: Iterable[int], done: str) -> str | None:
        for index in order:
            if not live[index]:
                continue
            await inboxes[index].put(message)
            reply: dict[str, Any] = dict(await outboxes[index].get())
            if reply["type"] == "lifespan.unsupported":
                live[index] = False
            elif reply["type"] != done:
                return str(reply.get("message", ""))
        return None

    try:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failure = await step(message, range(len(apps)), "lifespan.startup.complete")
                if failure is not None:
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                failure = await step(
                    message, reversed(range(len(apps))), "lifespan.shutdown.complete"
                )
                if failure is not None:
                    await send({"type": "lifespan.shutdown.failed", "message": failure})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def build_root_app(
    runtime: Runtime,
    *,
    downstream: ASGIApp | None = None,
    rules: Iterable[Rule] | None = None,
    access_log: bool | None = None,
    manage_runtime: bool = False,
) -> ASGIApp:
    """The app ``authgate serve`` runs: service + ``downstream`` (or a JSON 404) behind one
    middleware. ``rules`` default to the config file's, else "a credential everywhere".

    The caller starts and stops ``runtime`` (``serve`` starts it before listening), unless
    ``manage_runtime`` hands that to the app's lifespan (each ``--workers`` process).
    """
    settings = runtime.settings
    prefix = settings.http_prefix
    service = create_app(runtime, manage_runtime=False, listen_host=settings.host)
    user_rules = default_rules(settings) if rules is None else list(rules)
    logged = settings.access_log if access_log is None else access_log
    protected = AuthgateMiddleware(
        _Router(prefix, service, downstream),
        rules=[*service_rules(prefix), *user_rules],
        runtime=runtime,
        reserved_prefix=prefix,
        # `serve` listens where the settings say: "auto" can judge that.
        listen_host=settings.host,
        access_log=access_log,
        manage_runtime=manage_runtime,
        # A local scraper needs no credential, as the bypass admits it elsewhere.
        local_routes=[f"{prefix}/metrics"],
    )
    # Forward auth judges proxied requests by the operator's rules, ahead of the rest.
    return ForwardAuth(
        protected,
        runtime,
        user_rules,
        prefix=prefix,
        access_log=AccessLog(settings.access_log_format) if logged else None,
    )
