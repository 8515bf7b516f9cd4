"""The usage buffer: exact counts from many threads, with flushes running between them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

import pytest

from authgate.manage.usage import UsageBuffer

THREADS = 8
PER_THREAD = 20_000


def test_counts_stay_exact_while_threads_record_and_a_flusher_runs() -> None:
    buffer = UsageBuffer()
    totals: dict[str, int] = {}
    done = threading.Event()

    def sink(batch: Mapping[str, tuple[int, datetime]]) -> None:
        for key_id, (count, _last) in batch.items():
            totals[key_id] = totals.get(key_id, 0) + count

    def flusher() -> None:
        while not done.is_set():
            buffer.tally()
            buffer.flush(sink)

    def worker(i: int) -> None:
        for n in range(PER_THREAD):
            buffer.record(f"key_{(i + n) % 3}")

    background = threading.Thread(target=flusher)
    background.start()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    background.join()
    buffer.flush(sink)
    assert sum(totals.values()) == THREADS * PER_THREAD
    assert set(totals) == {"key_0", "key_1", "key_2"}


def test_a_flush_that_fails_keeps_the_counts_and_the_last_use() -> None:
    clock = iter([100.0, 200.0])
    buffer = UsageBuffer(clock=lambda: next(clock))
    buffer.record("key_a")
    buffer.record("key_a")

    def broken(_batch: Mapping[str, tuple[int, datetime]]) -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        buffer.flush(broken)
    buffer.record("key_a")
    seen: dict[str, tuple[int, datetime]] = {}
    assert buffer.flush(seen.update) == 1
    assert seen["key_a"][0] == 3
    assert seen["key_a"][1].timestamp() == 200.0
