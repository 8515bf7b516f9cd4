"""What authgate counts, in Prometheus's terms: every metric is defined here.

Off until ``enable()`` is called: ``authgate serve`` (``build_root_app``) calls it, and an
app using the middleware may call it too and serve ``exposition()`` itself. Until then
every ``record_*`` function returns at once, so the plain middleware install needs no
prometheus-client (an extra of ``authgate[server]``) and pays one check per call.

The core calls the ``record_*`` functions, one line each; they translate to the metric
objects and decide nothing. Labels are bounded by construction: a principal's kind
(``authgate.principal.PrincipalKind``), an error's code, a cache's name, a store
method's name, a limit's name, an upstream's HTTP status. Never a key id, a path or an
address: each would make one series per caller.

Several processes (``authgate serve --workers N``): prometheus-client's multiprocess mode,
chosen by ``PROMETHEUS_MULTIPROC_DIR``, which must be set before prometheus-client is
first imported; ``authgate.workers`` makes a private folder for it and sets it before
any worker starts. Each process writes its own files there, and a scrape of any worker
sums them all.
"""

from __future__ import annotations

import math
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from authgate.extras import require

if TYPE_CHECKING:
    from authgate.errors import AuthgateError
    from authgate.principal import Principal

__all__ = [
    "MULTIPROCESS_ENV",
    "Recorder",
    "enable",
    "exposition",
    "record_cache",
    "record_decision",
    "record_rate_limited",
    "record_store_call",
    "record_upstream",
    "record_upstream_failure",
]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How stale, at most, one worker's counts are in another worker's scrape.
FLUSH_SECONDS = 0.5

# From a decision in memory to one that waited on the store or Redis.
_DECISION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
)  # fmt: skip
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_UPSTREAM_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Anonymous passes (a public route, no credential) have no principal to name.
_ANONYMOUS_KIND = "anonymous"
_NO_PRINCIPAL_KIND = "none"
_ALLOWED = "allowed"


class Recorder:
    """The metric objects of this process, and the children already labelled (a
    ``labels()`` call takes a lock and builds a key: the hot path looks them up)."""

    def __init__(self) -> None:
        prometheus = require("prometheus_client", extra="server", needed_for="metrics")
        counter, histogram = prometheus.Counter, prometheus.Histogram
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        self._registry_class = prometheus.CollectorRegistry
        self.registry = registry = prometheus.CollectorRegistry()
        self._generate = prometheus.generate_latest
        self.content_type: str = prometheus.CONTENT_TYPE_LATEST
        self.decisions = counter(
            "authgate_decisions",
            "Decisions of the gate, by the principal's kind and the outcome: the error's "
            "code, or allowed.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.decision_seconds = histogram(
            "authgate_decision_seconds",
            "Time from a request's facts to the gate's verdict, its I/O included.",
            buckets=_DECISION_BUCKETS,
            registry=registry,
        )
        self.cache_lookups = counter(
            "authgate_cache_lookups",
            "Credential cache lookups, by cache and result (hit or miss).",
            ["cache", "result"],
            registry=registry,
        )
        self.store_seconds = histogram(
            "authgate_store_seconds",
            "Time a store call took, its deadline and breaker included.",
            buckets=_STORE_BUCKETS,
            registry=registry,
        )
        self.store_errors = counter(
            "authgate_store_errors",
            "Store calls that failed (slow, down, breaker open, refused), by operation.",
            ["operation"],
            registry=registry,
        )
        self.rate_limited = counter(
            "authgate_rate_limited",
            "Events refused by a rate limit, by the limit's name.",
            ["limit"],
            registry=registry,
        )
        self.upstream_responses = counter(
            "authgate_upstream_responses",
            "Responses of the gateway's upstream, by HTTP status.",
            ["status"],
            registry=registry,
        )
        self.upstream_failures = counter(
            "authgate_upstream_failures",
            "Proxied requests the upstream did not answer, by reason (timeout or error).",
            ["reason"],
            registry=registry,
        )
        self.upstream_seconds = histogram(
            "authgate_upstream_seconds",
            "Time from sending a request upstream to its response's status line.",
            buckets=_UPSTREAM_BUCKETS,
            registry=registry,
        )
        # Each thread counts in its own tally, which only it writes; ``flush`` reads them
        # all and hands on what grew since its last reading: no lock on the hot path, and
        # no count lost to a race.
        self._local = threading.local()
        self._tallies: list[_Tally] = []
        self._flush_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        if self.multiprocess_dir is not None:
            # Another worker's scrape reads this one's files: they must not lag for long.
            self._flusher = threading.Thread(
                target=self._flush_every, name="authgate-metrics", daemon=True
            )
            self._flusher.start()

    # The hot path counts in plain Python: prometheus-client takes a lock and several
    # calls per increment, a histogram's observation more, and a lock of our own costs
    # as much again (see bench/bench_metrics.py). ``flush`` hands the counts on in bulk.
    def _tally(self) -> _Tally:
        try:
            tally: _Tally = self._local.tally
        except AttributeError:
            tally = self._local.tally = _Tally()
            with self._flush_lock:
                self._tallies.append(tally)
        return tally

    def decided(
        self, principal: Principal | None, error: AuthgateError | None, seconds: float
    ) -> None:
        if principal is not None:
            kind: str = principal.kind
        else:
            kind = _ANONYMOUS_KIND if error is None else _NO_PRINCIPAL_KIND
        key = (kind, _ALLOWED if error is None else error.code)
        tally = self._tally()
        decided = tally.decided
        decided[key] = decided.get(key, 0) + 1
        tally.decision_seconds.add(seconds)

    def looked_up(self, cache: str, hit: bool) -> None:
        looked_up = self._tally().looked_up
        key = (cache, hit)
        looked_up[key] = looked_up.get(key, 0) + 1

    def upstream_answered(self, status: int, seconds: float) -> None:
        tally = self._tally()
        tally.answered[status] = tally.answered.get(status, 0) + 1
        tally.upstream_seconds.add(seconds)

    def flush(self) -> None:
        """Hand on to prometheus-client what each thread counted since the last flush."""
        with self._flush_lock:
            for tally in self._tallies:
                self._hand_on(tally)

    def _hand_on(self, tally: _Tally) -> None:
        for (kind, outcome), count in tally.grown(tally.decided, tally.sent_decided):
            self.decisions.labels(kind, outcome).inc(count)
        for (cache, hit), count in tally.grown(tally.looked_up, tally.sent_looked_up):
            self.cache_lookups.labels(cache, "hit" if hit else "miss").inc(count)
        for status, count in tally.grown(tally.answered, tally.sent_answered):
            self.upstream_responses.labels(str(status)).inc(count)
        tally.decision_seconds.hand_on(self.decision_seconds)
        tally.upstream_seconds.hand_on(self.upstream_seconds)

    def _flush_every(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def exposition(self) -> bytes:
        """Every metric in the text format; under several processes, their sum."""
        self.flush()
        if self.multiprocess_dir is None:
            return bytes(self._generate(self.registry))
        multiprocess = require(
            "prometheus_client.multiprocess", extra="server", needed_for="metrics"
        )
        registry = self._registry_class()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return bytes(self._generate(registry))


K = TypeVar("K")


class _Tally:
    """One thread's counts since the start (written by that thread alone), and what of
    them ``flush`` has handed on."""

    __slots__ = (
        "answered",
        "decided",
        "decision_seconds",
        "looked_up",
        "sent_answered",
        "sent_decided",
        "sent_looked_up",
        "upstream_seconds",
    )

    def __init__(self) -> None:
        self.decided: dict[tuple[str, str], int] = {}
        self.looked_up: dict[tuple[str, bool], int] = {}
        self.answered: dict[int, int] = {}
        self.sent_decided: dict[tuple[str, str], int] = {}
        self.sent_looked_up: dict[tuple[str, bool], int] = {}
        self.sent_answered: dict[int, int] = {}
        self.decision_seconds = _HistogramTally(_DECISION_BUCKETS)
        self.upstream_seconds = _HistogramTally(_UPSTREAM_BUCKETS)

    @staticmethod
    def grown(counts: dict[K, int], sent: dict[K, int]) -> list[tuple[K, int]]:
        """What grew since the last call, now marked as sent."""
        grown = []
        # A copy taken in one step: the owning thread may add a key meanwhile.
        for key, count in list(counts.items()):
            before = sent.get(key, 0)
            if count > before:
                grown.append((key, count - before))
                sent[key] = count
        return grown


class _HistogramTally:
    """Observations counted per bucket, to be added to a prometheus-client ``Histogram``.
    prometheus-client has no call that adds many observations at once, so ``hand_on``
    adds to the histogram's own bucket values (its ``_buckets`` and ``_sum``);
    tests/foundation/test_metrics.py checks the scraped histogram against the traffic,
    so a change there shows."""

    __slots__ = ("bounds", "counts", "sent_counts", "sent_total", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = [float(bound) for bound in bounds]
        if self.bounds[-1] != math.inf:
            self.bounds.append(math.inf)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.sent_counts = [0] * len(self.bounds)
        self.sent_total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def hand_on(self, histogram: Any) -> None:
        counts, total = list(self.counts), self.total
        if counts == self.sent_counts:
            return
        histogram._sum.inc(total - self.sent_total)
        for bucket, count, sent in zip(histogram._buckets, counts, self.sent_counts, strict=True):
            if count > sent:
                bucket.inc(count - sent)
        self.sent_counts, self.sent_total = counts, total


# This process's recorder; ``None`` while metrics are off.
recorder: Recorder | None = None


def enable() -> Recorder:
    """Turn metrics on in this process (idempotent); ``ConfigurationError`` naming the
    ``server`` extra when prometheus-client is not installed."""
    global recorder
    if recorder is None:
        if os.environ.get(MULTIPROCESS_ENV):
            # Imported here: multiprocess mode reads the variable at import time.
            require("prometheus_client.multiprocess", extra="server", needed_for="metrics")
        recorder = Recorder()
    return recorder


def exposition() -> tuple[bytes, str] | None:
    """The scrape's body and content type, or ``None`` while metrics are off."""
    if recorder is None:
        return None
    return recorder.exposition(), recorder.content_type


def record_decision(
    principal: Principal | None, error: AuthgateError | None, seconds: float
) -> None:
    if recorder is not None:
        recorder.decided(principal, error, seconds)


def record_cache(cache: str, hit: bool) -> None:
    if recorder is not None:
        recorder.looked_up(cache, hit)


def record_store_call(operation: str, seconds: float, failed: bool) -> None:
    if recorder is not None:
        recorder.store_seconds.observe(seconds)
        if failed:
            recorder.store_errors.labels(operation).inc()


def record_rate_limited(limit: str) -> None:
    if recorder is not None:
        recorder.rate_limited.labels(limit).inc()


def record_upstream(status: int, seconds: float) -> None:
    if recorder is not None:
        recorder.upstream_answered(status, seconds)


def record_upstream_failure(reason: str) -> None:
    if recorder is not None:
        recorder.upstream_failures.labels(reason).inc()
