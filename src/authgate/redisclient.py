"""What authgate asks of redis-py, imported only once Redis is configured."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from authgate.extras import require
from authgate.settings import Settings

__all__ = ["redis_client_options", "redis_errors", "require_redis"]


def require_redis() -> ModuleType:
    return require("redis", extra="redis", needed_for="redis_url")


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call raises when Redis cannot answer: the breaker's failures."""
    from limits.errors import StorageError

    return (require_redis().RedisError, StorageError, OSError)


def redis_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every redis-py client authgate makes: deadlines, no retry.

    redis-py retries a failed command ten times by default; the breaker is the retry
    policy here, and a retry would multiply every wait."""
    require_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": Retry(NoBackoff(), 0),
    }
