"""The server's answers as authgate's errors.

    AuthgateError                        the hierarchy of ``authgate.errors``: a JSON error
    ├── MissingCredentials … NotReady    whose code (else status) names one of them is raised
    │   └── Unreachable                  no answer: refused, timed out, or TLS not trusted
    └── ClientError                      any other error answer: status, code and detail

Every raised error carries the server's ``status``, ``code``, ``detail`` and ``headers``
(``Retry-After`` on a 429), so a caller can branch on the class or on the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from authgate.errors import (
    AuthgateError,
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidLogin,
    InvalidRequest,
    MissingCredentials,
    NotFound,
    NotReady,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

__all__ = ["ClientError", "Unreachable", "error_for", "unreachable"]


class ClientError(AuthgateError):
    """An error answer no other class names: its status, code and detail as sent."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers=headers)
        self.status = status
        self.code = code


class Unreachable(NotReady):
    """No answer from the server. A ``NotReady``: whoever fails closed on a 503 does the
    same when the server cannot be reached at all."""

    code = "unreachable"


_KINDS: tuple[type[AuthgateError], ...] = (
    MissingCredentials,
    InvalidCredentials,
    InvalidLogin,
    Forbidden,
    NotFound,
    Conflict,
    InvalidRequest,
    RateLimited,
    NotReady,
    UpstreamError,
    UpstreamTimeout,
)
_BY_CODE = {kind.code: kind for kind in _KINDS}
_BY_STATUS: dict[int, type[AuthgateError]] = {
    400: InvalidRequest,
    401: InvalidCredentials,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    502: UpstreamError,
    503: NotReady,
    504: UpstreamTimeout,
}


def error_for(response: httpx.Response) -> AuthgateError:
    """The error an error answer stands for (``{"detail", "code"}``, else its status)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    detail = _sentence(body.get("detail")) or (
        f"the server answered {status} {response.reason_phrase}".rstrip()
    )
    code = body.get("code") if isinstance(body.get("code"), str) else None
    headers = {
        name: value
        for name, value in response.headers.items()
        if name in ("www-authenticate", "retry-after") or name.startswith("ratelimit")
    }
    kind = _BY_CODE.get(code) if code else None
    if kind is None or kind.status != status:
        kind = _BY_STATUS.get(status)
    if kind is None:
        return ClientError(status, code or f"http_{status}", detail, headers=headers)
    error = kind(detail, headers=headers)
    # A code of the server's own (``invalid_login``, say) stays readable on the instance.
    error.code = code or kind.code
    error.status = status
    return error


def unreachable(url: httpx.URL | str, exc: httpx.TransportError) -> Unreachable:
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(f"{url} did not answer in time ({type(exc).__name__}).")
    reason = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return Unreachable(
            f"cannot reach {url}: its TLS certificate is not trusted ({reason}). Trust the "
            "CA bundle that signed it: --cacert PATH or AUTHGATE_CA_BUNDLE for the CLI, "
            "verify=PATH for authgate.client. The self-signed certificate of `authgate "
            "serve` is <data folder>/tls/self-signed-cert.pem on the server."
        )
    return Unreachable(f"cannot reach {url}: {reason}")


def _sentence(detail: Any) -> str | None:
    """FastAPI's list of validation problems as one sentence, the field named in each."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for problem in detail:
            if not isinstance(problem, dict):
                continue
            field = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "body"
            message = str(problem.get("msg", "invalid"))
            parts.append(message if message.startswith(field) else f"{field}: {message}")
        return "; ".join(parts) or None
    return None
