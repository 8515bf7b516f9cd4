"""The ``authgate`` command line: admin commands on the local data folder, and the server."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authgate.cli.main import app

__all__ = ["app", "main"]

# What every subcommand stands on; ``serve`` asks for the server extra itself.
_CLI_MODULES = ("typer", "rich", "httpx")


def main() -> None:
    """The console script. It is installed with the base package too, so a missing extra
    is a sentence naming it (exit 2, as every configuration error), not a traceback."""
    from authgate.errors import ConfigurationError
    from authgate.extras import require

    try:
        for module in _CLI_MODULES:
            require(module, extra="cli", needed_for="the authgate command")
    except ConfigurationError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        raise SystemExit(2) from None
    from authgate.cli.main import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from authgate.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
