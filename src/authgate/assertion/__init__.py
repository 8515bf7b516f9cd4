"""Signed identity for the upstream: ``X-Authgate-Assertion``, a short-lived JWT.

Upstream side (``pip install 'authgate[assertion]'``): ``verify(token, jwks_url=…,
audience=…)`` checks an assertion against the JWKS authgate publishes at
``<http_prefix>/.well-known/jwks.json``; ``authgate.assertion.fastapi`` and
``authgate.assertion.wsgi`` refuse requests that did not come through authgate.

Server side: ``assertions_from_settings`` makes the signer the gateway and verify hand
to ``identity_headers``. The JOSE library is imported only when one of these is used,
so ``import authgate`` stays lean.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from authgate.extras import require
from authgate.proxy.header_rules import ASSERTION_HEADER
from authgate.settings import Settings

if TYPE_CHECKING:
    from authgate.assertion.issuer import AssertionIssuer
    from authgate.assertion.verification import Assertion, AssertionVerifier, verify

__all__ = [
    "ASSERTION_HEADER",
    "Assertion",
    "AssertionVerifier",
    "assertions_from_settings",
    "verify",
]

_LAZY = {"Assertion", "AssertionVerifier", "verify"}


def assertions_from_settings(settings: Settings) -> AssertionIssuer | None:
    """The signer ``assertion = true`` asks for, or ``None`` when it is off."""
    if not settings.assertion:
        return None
    require("joserfc", extra="assertion", needed_for="assertion = true")
    from authgate.assertion.issuer import issuer_from_settings

    return issuer_from_settings(settings)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require("joserfc", extra="assertion", needed_for="authgate.assertion")
        return getattr(importlib.import_module("authgate.assertion.verification"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
