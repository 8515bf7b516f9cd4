"""The ``authgate`` command line: admin commands on the local data folder, and the server."""

from __future__ import annotations

from authgate.cli.main import app, main

__all__ = ["app", "main"]
