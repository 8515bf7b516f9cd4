"""authgate: one authentication layer for HTTP APIs."""

from __future__ import annotations

__version__ = "0.1.0"
