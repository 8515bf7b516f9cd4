"""The public API stays importable from the package root."""

from __future__ import annotations

import authgate


def test_every_name_in_all_is_exported() -> None:
    missing = [name for name in authgate.__all__ if not hasattr(authgate, name)]
    assert missing == []


def test_the_public_names_a_newcomer_uses_are_in_all() -> None:
    expected = {
        "AuthgateMiddleware",
        "AuthgateWSGIMiddleware",
        "RequireScopes",
        "Rule",
        "Principal",
        "Runtime",
        "load_settings",
        "AuthgateError",
    }
    assert expected <= set(authgate.__all__)
