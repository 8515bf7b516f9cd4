"""Revocation broadcast over Redis pub/sub: other instances drop a key at once.

The store's change feed already reaches every instance within a poll interval; the
broadcast makes it immediate when Redis is configured, and costs nothing on the hot path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from redis.client import PubSub

__all__ = ["CHANNEL", "RevocationBroadcast"]

CHANNEL = "authgate:revocations"
log = logging.getLogger("authgate.broadcast")


class RevocationBroadcast:
    def __init__(self, url: str, on_revoked: Callable[[str], None]) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._on_revoked = on_revoked
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, key_id: str) -> None:
        try:
            self._client.publish(CHANNEL, key_id)
        except redis.RedisError as exc:
            # The change feed still carries the revocation; only the shortcut failed.
            log.warning("revocation broadcast failed (%s); instances will see it by polling", exc)

    def start(self) -> None:
        """Subscribe before returning, so no revocation published after start is missed."""
        self._stop.clear()
        first = self._subscribe()
        self._thread = threading.Thread(
            target=self._listen, args=(first,), name="authgate-bcast", daemon=True
        )
        self._thread.start()

    def _subscribe(self) -> PubSub | None:
        try:
            pubsub: PubSub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(CHANNEL)
            return pubsub
        except redis.RedisError as exc:
            log.warning("revocation broadcast unavailable (%s); retrying", exc)
            return None

    def stop(self) -> None:
        self._stop.set()
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
            except redis.RedisError as exc:
                log.warning("revocation broadcast lost (%s); resubscribing", exc)
                pubsub.close()
                pubsub = None
                continue
            if message and message.get("type") == "message":
                data = message["data"]
                self._on_revoked(data.decode() if isinstance(data, bytes) else str(data))
        if pubsub is not None:
            pubsub.close()
