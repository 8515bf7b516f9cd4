"""Usage counters, buffered in memory and flushed in batches (never a write per request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

__all__ = ["UsageBuffer"]


class UsageBuffer:
    def __init__(self) -> None:
        self._pending: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def record(self, key_id: str) -> None:
        # The lock costs well under a microsecond uncontended, and keeps counts exact
        # when the WSGI adapter serves from many threads.
        now = time.time()
        with self._lock:
            slot = self._pending.get(key_id)
            if slot is None:
                self._pending[key_id] = [1, now]
            else:
                slot[0] += 1
                slot[1] = now

    def flush(self, sink: Callable[[Mapping[str, tuple[int, datetime]]], None]) -> int:
        """Hand everything pending to ``sink``; on failure keep it for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        batch = {
            key_id: (int(count), datetime.fromtimestamp(last, UTC))
            for key_id, (count, last) in pending.items()
        }
        try:
            sink(batch)
        except Exception:
            with self._lock:
                for key_id, (count, last) in pending.items():
                    slot = self._pending.setdefault(key_id, [0, last])
                    slot[0] += count
                    slot[1] = max(slot[1], last)
            raise
        return len(batch)
