"""Revocation broadcast over Redis pub/sub: other instances drop a key at once.

The store's change feed already reaches every instance within a poll interval; the
broadcast makes it immediate when Redis is configured, and costs nothing on the hot path.
Nothing waits on it either: once started, revocations are published from a thread of
the broadcast's own, through the Redis circuit breaker, so a revoke is answered at
once whether Redis answers, hangs or is gone (the change feed then carries it alone).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from authgate.breaker import CircuitBreaker, CircuitOpen
from authgate.redisclient import require_redis

if TYPE_CHECKING:
    import redis
    from redis.client import PubSub

__all__ = ["CHANNEL", "RevocationBroadcast"]

CHANNEL = "authgate:revocations"
log = logging.getLogger("authgate.broadcast")


_STOP = ""  # never a key id: tells the publisher to finish


class RevocationBroadcast:
    def __init__(
        self,
        url: str,
        on_revoked: Callable[[str], None],
        *,
        breaker: CircuitBreaker,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        require_redis()
        import redis

        self._client: redis.Redis = redis.Redis.from_url(url, **dict(client_options or {}))
        self._redis_error = redis.RedisError
        self._on_revoked = on_revoked
        self._breaker = breaker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._publisher: threading.Thread | None = None

    def publish(self, key_id: str) -> None:
        """Queue the revocation for the publisher; before ``start`` (a one-shot CLI
        process), send it now, within the Redis deadlines."""
        if self._publisher is None:
            self._send(key_id)
        else:
            self._outbox.put(key_id)

    def _send(self, key_id: str) -> None:
        try:
            self._breaker.call(lambda: self._client.publish(CHANNEL, key_id))
        except CircuitOpen as exc:
            # The change feed still carries the revocation; only the shortcut failed.
            log.warning("revocation broadcast failed (%s); instances will see it by polling", exc)

    def _publish_queued(self) -> None:
        while (key_id := self._outbox.get()) != _STOP:
            self._send(key_id)

    def start(self) -> None:
        """Subscribe before returning, so no revocation published after start is missed."""
        self._stop.clear()
        first = self._subscribe()
        self._thread = threading.Thread(
            target=self._listen, args=(first,), name="authgate-bcast", daemon=True
        )
        self._thread.start()
        self._publisher = threading.Thread(
            target=self._publish_queued, name="authgate-bcast-pub", daemon=True
        )
        self._publisher.start()

    def _subscribe(self) -> PubSub | None:
        try:
            pubsub: PubSub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(CHANNEL)
            return pubsub
        except self._redis_error as exc:
            log.warning("revocation broadcast unavailable (%s); retrying", exc)
            return None

    def stop(self) -> None:
        self._stop.set()
        if self._publisher is not None:
            self._outbox.put(_STOP)
            self._publisher.join(timeout=3)
            self._publisher = None
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._client.close()

    def _listen(self, pubsub: PubSub | None) -> None:
        while not self._stop.is_set():
            if pubsub is None:
                self._stop.wait(1.0)
                pubsub = self._subscribe()
                continue
            try:
                message = pubsub.get_message(timeout=0.5)
            except self._redis_error as exc:
                log.warning("revocation broadcast lost (%s); resubscribing", exc)
                pubsub.close()
                pubsub = None
                continue
            if message and message.get("type") == "message":
                data = message["data"]
                self._on_revoked(data.decode() if isinstance(data, bytes) else str(data))
        if pubsub is not None:
            pubsub.close()
