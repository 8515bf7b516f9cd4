"""ASGI scope → request facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authgate.facts import RequestFacts

__all__ = ["facts_from_scope", "peer_of"]


def peer_of(scope: Mapping[str, Any]) -> str | None:
    """The socket's peer address, the only address that cannot be spoofed by a header."""
    client = scope.get("client")
    return str(client[0]) if client else None


def facts_from_scope(scope: Mapping[str, Any]) -> RequestFacts:
    method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
    return RequestFacts.from_asgi_headers(
        method,
        scope.get("path", "/"),
        scope.get("headers", ()),
        query_string=scope.get("query_string", b""),
        raw_path=scope.get("raw_path"),
        peer=peer_of(scope),
        scheme=scope.get("scheme", "http"),
    )
