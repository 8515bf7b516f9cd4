"""A key's requests per hour as bars of an SVG drawn on the server: no chart library and
no script, so the page keeps its strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Bar", "Chart", "hourly_chart"]

HEIGHT = 80  # the SVG's drawing height; bars scale to the busiest hour
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    height: int
    hour: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    total: int
    peak: Bar | None


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_chart(counts: Iterable[tuple[datetime, int]], since: datetime, now: datetime) -> Chart:
    """One bar per hour from ``since`` to ``now``, empty hours included."""
    by_hour = {_hour(hour): count for hour, count in counts}
    hours: list[datetime] = []
    at = _hour(since)
    while at <= now:
        hours.append(at)
        at += HOUR
    busiest = max((by_hour.get(hour, 0) for hour in hours), default=0)
    bars = [
        Bar(
            x=index,
            height=round(HEIGHT * by_hour.get(hour, 0) / busiest) if busiest else 0,
            hour=hour,
            count=by_hour.get(hour, 0),
        )
        for index, hour in enumerate(hours)
    ]
    total = sum(bar.count for bar in bars)
    peak = max(bars, key=lambda bar: bar.count) if total else None
    return Chart(bars=bars, width=len(bars), height=HEIGHT, total=total, peak=peak)
