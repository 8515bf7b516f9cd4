"""The circuit breaker on its own, with a clock the test moves."""

from __future__ import annotations

import pytest

from authgate.breaker import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_refuses_until_the_reset_time() -> None:
    clock = Clock()
    events: list[str] = []
    breaker = CircuitBreaker(
        failures=3,
        reset_seconds=5,
        clock=clock,
        on_open=lambda: events.append("open"),
        on_close=lambda: events.append("close"),
    )
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between starts the count again
    breaker.failed()
    breaker.failed()
    assert breaker.allow() and not breaker.is_open
    breaker.failed()
    assert breaker.is_open and events == ["open"]
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    assert breaker.retry_in == pytest.approx(0.1)


def test_one_probe_after_the_reset_time_closes_or_reopens_the_circuit() -> None:
    clock = Clock()
    events: list[str] = []
    breaker = CircuitBreaker(
        failures=1,
        reset_seconds=5,
        clock=clock,
        on_open=lambda: events.append("open"),
        on_close=lambda: events.append("close"),
    )
    breaker.failed()
    clock.now += 5
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.failed()  # the probe failed: another full wait
    assert not breaker.allow()
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    breaker.succeeded()
    assert not breaker.is_open and breaker.allow() and breaker.retry_in == 0
    assert events == ["open", "close"]  # opened once, closed once


def test_weak_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one failure"):
        CircuitBreaker(failures=0, reset_seconds=1)
    with pytest.raises(ValueError, match="positive"):
        CircuitBreaker(failures=1, reset_seconds=0)


def test_call_and_allow_drive_one_circuit() -> None:
    """The store reports to the breaker around its own deadline, Redis callers go through
    ``call``: both are the same circuit, opened by either and probed once."""
    clock = Clock()
    breaker = CircuitBreaker(
        "Redis", failures=2, reset_seconds=5, errors=(ConnectionError,), clock=clock
    )

    def refused() -> None:
        raise ConnectionError("connection refused")

    breaker.failed()  # reported by a caller that made the call itself
    with pytest.raises(CircuitOpen):
        breaker.call(refused)  # counted: the second failure in a row
    assert breaker.is_open and not breaker.allow()
    assert breaker.last_error == "connection refused"
    calls: list[str] = []
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: calls.append("called"))
    assert calls == []  # open: not even tried
    clock.now += 5
    assert breaker.call(lambda: "answered") == "answered"  # the probe closes it
    assert breaker.allow() and not breaker.is_open
    assert [change.state for change in breaker.take_transitions()] == ["down", "up"]
