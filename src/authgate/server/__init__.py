"""The token service: FastAPI routers under the reserved prefix."""

from __future__ import annotations

from authgate.server.app import create_app

__all__ = ["create_app"]
