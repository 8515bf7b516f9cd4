"""One injectable clock, so expiry and skew can be tested without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "now_utc", "parse_duration"]

Clock = Callable[[], datetime]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``30d``, ``2w``: the short forms operators type.

    Hand-written because ISO 8601 (``P30D``), which pydantic parses, is not what anyone
    types on a command line.
    """
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in _UNITS or not value[:-1].isdigit():
        raise ValueError(f"{text!r} is not a duration: use a number and s, m, h, d or w (e.g. 30d)")
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])
