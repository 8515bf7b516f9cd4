"""One injectable clock, so expiry and skew can be tested without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "now_utc", "parse_duration"]

Clock = Callable[[], datetime]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_SECONDS = 36500 * 86400


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``30d``, ``2w``: the short forms operators type.

    Hand-written because ISO 8601 (``P30D``), which pydantic parses, is not what anyone
    types on a command line.
    """
    value = text.strip().lower()
    number = value[:-1]
    if len(value) < 2 or value[-1] not in _UNITS or not (number.isascii() and number.isdigit()):
        raise ValueError(f"{text!r} is not a duration: use a number and s, m, h, d or w (e.g. 30d)")
    seconds = int(number) * _UNITS[value[-1]]
    # Keeps "now + duration" far from the end of datetime (year 9999), which would raise.
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{text!r} is too long: at most {_MAX_SECONDS // 86400}d (100 years)")
    return timedelta(seconds=seconds)
