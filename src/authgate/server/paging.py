"""The bounds every paged listing of the API shares (``/audit``, ``/tokens``)."""

from __future__ import annotations

__all__ = ["MAX_OFFSET", "MAX_PAGE"]

MAX_PAGE = 1000
# Far past any real store, inside SQLite's and PostgreSQL's 64-bit integers (a bigger
# offset cannot be bound to the query) and exact in JSON for JavaScript clients.
MAX_OFFSET = 2**53
