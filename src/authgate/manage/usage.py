"""Usage counters, buffered in memory and flushed in batches (never a write per request)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

__all__ = ["UsageBuffer"]


class UsageBuffer:
    """Counts uses per key id, exactly, without a lock on the hot path.

    ``record`` is the bound ``append`` of a list: one C call, atomic under the GIL, so the
    WSGI adapter's threads lose nothing. ``tally`` (the runtime's watcher calls it at every
    poll, ``flush`` before each write) folds the list into per-key counts, which keeps it
    short; a key's last use is known to within one tally.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._hits: list[str] = []
        self.record: Callable[[str], None] = self._hits.append
        self._clock = clock
        self._pending: dict[str, list[float]] = {}  # key id -> [count, last use]
        self._lock = threading.Lock()  # held by tally and flush, never by record

    def tally(self) -> None:
        with self._lock:
            # Appends land at the end while this runs: only what was copied is deleted.
            taken = len(self._hits)
            if not taken:
                return
            hits = self._hits[:taken]
            del self._hits[:taken]
            now = self._clock()
            for key_id, count in Counter(hits).items():
                self._add_locked(key_id, count, now)

    def _add_locked(self, key_id: str, count: float, last: float) -> None:
        slot = self._pending.setdefault(key_id, [0, last])
        slot[0] += count
        slot[1] = max(slot[1], last)

    def flush(self, sink: Callable[[Mapping[str, tuple[int, datetime]]], None]) -> int:
        """Hand everything pending to ``sink``; on failure keep it for the next flush."""
        self.tally()
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
                    self._add_locked(key_id, count, last)
            raise
        return len(batch)
