"""The closest valid spelling of a mistyped name, for error messages that say what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest"]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The one choice ``name`` most likely meant to spell, if any is close enough."""
    found = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None
