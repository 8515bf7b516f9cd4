"""CORS preflights to an S3 path: the store's to answer, and nothing else rides on them.

A browser asks before a cross-origin request with an ``OPTIONS`` carrying ``Origin`` and
``Access-Control-Request-Method``, and never signs it nor sends a credential with it
(the Fetch standard forbids both), so the gate cannot authenticate it. The store holds
the bucket's CORS rules and answers it; all its answer grants is that the browser may
then send the real request, which is authenticated as any other.

So a preflight passes to the store anonymously, but only one a browser could have sent:
one ``Origin``, one ``Access-Control-Request-Method`` naming a method, no body, and no
credential (``Authorization``, ``X-API-Key``, ``Cookie``). Anything else is not a
preflight and is judged as the request it is (an ``OPTIONS`` with a credential needs
that credential and the bucket's ``admin`` grant). The query is kept: a browser's
preflight to a presigned URL carries the URL's signature, which does not sign the
``OPTIONS`` and is not checked.
"""

from __future__ import annotations

import re

from authgate.facts import RequestFacts

__all__ = ["is_cors_preflight"]

# RFC 9110's token: what a method name is.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CREDENTIALS = ("authorization", "x-api-key", "cookie", "proxy-authorization")


def _has_body(facts: RequestFacts) -> bool:
    if facts.header_all("transfer-encoding"):
        return True
    lengths = facts.header_all("content-length")
    return any(length.strip() != "0" for length in lengths)


def is_cors_preflight(facts: RequestFacts) -> bool:
    """Whether ``facts`` are a browser's CORS preflight and nothing more (see above)."""
    if facts.method != "OPTIONS":
        return False
    origins = facts.header_all("origin")
    methods = facts.header_all("access-control-request-method")
    if len(origins) != 1 or len(methods) != 1 or not origins[0].strip():
        return False
    if not _METHOD.fullmatch(methods[0].strip()):
        return False
    if any(facts.header_all(name) for name in _CREDENTIALS):
        return False
    return not _has_body(facts)
