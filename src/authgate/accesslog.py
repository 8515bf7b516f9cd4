"""One access-log line per request, on the ``authgate.access`` logger.

Text (the default)::

    127.0.0.1 "GET /packages/demo" 200 Auth: yes key=key_Ab12Cd34Ef56Gh78 0.4ms

or one JSON object a line (``access_log_format = "json"``) with the fields ``client``,
``method``, ``path``, ``status``, ``auth`` (``yes`` / ``no`` / ``local``), ``key_id``,
``duration_ms`` and ``protocol`` (``http`` / ``websocket``). The same fields ride on the
record as ``record.authgate`` for handlers that want them structured.

Never logged: credentials (only the key's id), query strings (they can carry
presigned signatures or tokens), request and response bodies.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = "authgate.access"

_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\"})


def _printable(text: str) -> str:
    # A path can carry quotes or, on a refused request, control characters: escape them
    # so that one request is always one line that a parser can split.
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    escaped = text.translate(_ESCAPES)
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in escaped)


class AccessLog:
    def __init__(
        self, fmt: Literal["text", "json"] = "text", logger: logging.Logger | None = None
    ) -> None:
        self.format = fmt
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def record(
        self,
        *,
        method: str,
        path: str,
        status: int,
        auth: str,
        key_id: str | None,
        duration_ms: float,
        client: str | None,
        protocol: str = "http",
    ) -> None:
        fields = {
            "client": client,
            "method": method,
            "path": path,
            "status": status,
            "auth": auth,
            "key_id": key_id,
            "duration_ms": round(duration_ms, 3),
            "protocol": protocol,
        }
        if self.format == "json":
            message = json.dumps(fields, ensure_ascii=False)
        else:
            message = (
                f'{client or "-"} "{method} {_printable(path)}" {status} '
                f"Auth: {auth} key={key_id or '-'} {duration_ms:.1f}ms"
            )
        self.logger.info(message, extra={"authgate": fields})
