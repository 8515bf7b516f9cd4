"""A custom credential verifier: a toy HMAC header, registered with one line.

A client holding a shared secret signs the method and path of each request::

    X-Hmac-Key: <key name>
    X-Hmac-Signature: <hex HMAC-SHA256 of "<METHOD>\\n<path>" under that key's secret>

Register it in the config file (the module must be importable by the server)::

    verifiers = ["examples.hmac_verifier:HmacHeader"]

or ``AUTHGATE_VERIFIERS=examples.hmac_verifier:HmacHeader``, or in code
``AuthgateMiddleware(app, verifiers=["examples.hmac_verifier:HmacHeader"])``. The
middleware, the gateway (``authgate serve --upstream``) and forward auth
(``/authgate/v1/verify``) then take it like any built-in credential: the same rules, the
same failure limit, the same answers. The secrets come from ``HMAC_EXAMPLE_SECRETS``
(``name=secret,...``); a real verifier would read its store, which is why the look-up is
yielded as a ``Need`` rather than done in place: the gate runs it off the event loop.

A toy: nothing binds the signature to a time or a body, so it can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import partial

from authgate.credentials.verifiers import Decision, Request
from authgate.errors import InvalidCredentials
from authgate.pipeline import Flow, Need
from authgate.principal import Principal
from authgate.runtime import Runtime

__all__ = ["HmacHeader", "sign"]

SECRETS_VARIABLE = "HMAC_EXAMPLE_SECRETS"


def sign(secret: str, method: str, path: str) -> str:
    message = f"{method.upper()}\n{path}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _secrets_from(value: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in value.split(",") if item.strip())
    return {name.strip(): secret.strip() for name, _, secret in pairs if secret.strip()}


class HmacHeader:
    """Built by the gate with the runtime (``verifiers = ["module:HmacHeader"]``)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._secrets = _secrets_from(os.environ.get(SECRETS_VARIABLE, ""))

    def claims(self, request: Request) -> bool:
        return request.facts().header("x-hmac-signature") is not None

    def verify(self, request: Request) -> Flow[Decision]:
        facts = request.facts()
        name = facts.header("x-hmac-key") or ""
        signature = facts.header("x-hmac-signature") or ""
        secret: str | None = yield Need(partial(self._secrets.get, name))
        if secret is None or not hmac.compare_digest(
            sign(secret, facts.method, facts.path), signature
        ):
            return InvalidCredentials("The HMAC signature does not verify.")
        return Principal(id=f"hmac:{name}", name=name, kind="custom", scopes=frozenset({"read"}))
