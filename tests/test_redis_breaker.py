"""The Redis circuit breaker: when it calls, when it answers without calling, what it records."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from authgate.breaker import CircuitBreaker, CircuitBusy, CircuitOpen
from tests.support import wait_until

RESET = 0.05


class Down(ConnectionError):
    pass


def breaker(**overrides: object) -> CircuitBreaker:
    options: dict[str, object] = {
        "failures": 3,
        "reset_seconds": RESET,
        "max_concurrent": 4,
        "errors": (ConnectionError,),
    }
    options.update(overrides)
    return CircuitBreaker("Redis", **options)  # type: ignore[arg-type]


def failing() -> None:
    raise Down("connection refused")


def counted(calls: list[str], outcome: Callable[[], str]) -> Callable[[], str]:
    def call() -> str:
        calls.append("called")
        return outcome()

    return call


def test_opens_after_failures_in_a_row_then_one_trial_closes_it() -> None:
    guard = breaker()
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            guard.call(failing)
    assert guard.is_open and guard.down_since is not None
    calls: list[str] = []
    with pytest.raises(CircuitOpen):
        guard.call(counted(calls, lambda: "ok"))
    assert calls == []  # open: not even tried
    # After the reset time, one call is let through; its success closes the breaker.
    assert wait_until(lambda: _try(guard, counted(calls, lambda: "ok")) == "ok", timeout=5)
    assert calls == ["called"]
    assert not guard.is_open and guard.down_since is None
    down, up = guard.take_transitions()
    assert (down.state, up.state) == ("down", "up")
    assert "connection refused" in down.reason
    assert up.down_seconds > 0
    assert guard.take_transitions() == []


def test_a_failed_trial_keeps_it_open() -> None:
    guard = breaker(failures=1)
    with pytest.raises(CircuitOpen):
        guard.call(failing)
    calls: list[str] = []

    def fail_counted() -> str:
        calls.append("called")
        raise Down("still refused")

    assert wait_until(lambda: _try(guard, fail_counted) == "failed", timeout=5)
    assert calls == ["called"]
    assert guard.is_open
    # Only the first opening is a transition: the outage goes on.
    assert [t.state for t in guard.take_transitions()] == ["down"]


def test_a_success_between_failures_resets_the_count() -> None:
    guard = breaker()
    for _ in range(2):
        with pytest.raises(CircuitOpen):
            guard.call(failing)
    assert guard.call(lambda: "ok") == "ok"
    for _ in range(2):
        with pytest.raises(CircuitOpen):
            guard.call(failing)
    assert not guard.is_open


def test_calls_beyond_the_bound_answer_busy_without_calling() -> None:
    guard = breaker(max_concurrent=1)
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(10)
        return "slow"

    worker = threading.Thread(target=guard.call, args=(slow,))
    worker.start()
    try:
        assert entered.wait(10)
        calls: list[str] = []
        with pytest.raises(CircuitBusy) as busy:
            guard.call(counted(calls, lambda: "ok"))
        assert busy.value.busy and calls == []
        assert not guard.is_open  # busy says nothing of the dependency's health
    finally:
        release.set()
        worker.join(10)
    assert guard.call(lambda: "ok") == "ok"


def test_while_the_trial_is_in_flight_everyone_else_falls_back() -> None:
    guard = breaker(failures=1)
    with pytest.raises(CircuitOpen):
        guard.call(failing)
    entered, release = threading.Event(), threading.Event()

    def trial() -> str:
        entered.set()
        release.wait(10)
        return "ok"

    assert wait_until(lambda: _trial_started(guard, trial, entered), timeout=5)
    try:
        calls: list[str] = []
        with pytest.raises(CircuitOpen):
            guard.call(counted(calls, lambda: "ok"))
        assert calls == []
    finally:
        release.set()
    assert wait_until(lambda: not guard.is_open, timeout=5)


def test_other_errors_pass_through_uncounted() -> None:
    guard = breaker(failures=1)

    def bug() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        guard.call(bug)
    assert not guard.is_open


def _try(guard: CircuitBreaker, call: Callable[[], str]) -> str:
    try:
        return guard.call(call)
    except CircuitOpen as exc:
        return "failed" if exc.__cause__ is not None else "refused"


def _trial_started(
    guard: CircuitBreaker, trial: Callable[[], str], entered: threading.Event
) -> bool:
    worker = threading.Thread(target=_try, args=(guard, trial), daemon=True)
    worker.start()
    return entered.wait(0.2)
