"""Optional dependencies, imported where a feature needs them.

``import authgate`` and the middleware stand on the base install; a server, a client, a
Redis or PostgreSQL driver comes from an extra (``pip install 'authgate[redis]'``), so a
setting that needs one that is missing is refused with the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from authgate.errors import ConfigurationError

__all__ = ["require"]


def require(module: str, *, extra: str, needed_for: str) -> ModuleType:
    """``module``, imported; ``ConfigurationError`` naming ``extra`` when it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module is there but one of its own imports is broken
        raise ConfigurationError(
            f"{needed_for} needs {exc.name}, which is not installed: "
            f"install authgate[{extra}] (pip install 'authgate[{extra}]')"
        ) from None
