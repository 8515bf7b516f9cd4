"""The console's form posts, read strictly: capped in size, URL-encoded only, and each
field once, unless it is one of the fields a form sends as a list (checkboxes).

A field sent twice could be read one way by authgate and another by whatever logged or
relayed the request, as with JSON bodies (``authgate.server.body``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request

from authgate.errors import InvalidRequest
from authgate.server.body import BadRequest, UnsupportedMediaType, read_capped

__all__ = ["Form", "read_form"]

LISTS: frozenset[str] = frozenset({"scopes"})
MAX_FIELDS = 64
BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class Form:
    fields: dict[str, str]
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value.strip() if value is not None else None

    def text(self, name: str, *, label: str | None = None) -> str:
        value = self.get(name)
        if not value:
            raise InvalidRequest(f"{label or name.replace('_', ' ').capitalize()} is required.")
        return value

    def raw(self, name: str) -> str | None:
        """A field exactly as sent (passwords keep their spaces)."""
        return self.fields.get(name)

    def number(self, name: str, *, label: str) -> int | None:
        value = self.get(name)
        if not value:
            return None
        if not value.isdigit() or len(value) > 9:
            raise InvalidRequest(f"{label} must be a whole number.")
        return int(value)

    def many(self, name: str) -> list[str]:
        return self.lists.get(name, [])


def parse_form(raw: bytes, lists: Collection[str] = LISTS) -> Form:
    try:
        text = raw.decode("ascii")
        # parse_qsl keeps a broken escape ("%zz", a lone "%") as literal text, which
        # another reader of the same body may decode otherwise.
        if BROKEN_ESCAPE.search(text):
            raise ValueError("broken percent-encoding")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The form cannot be read.") from None
    fields: dict[str, str] = {}
    many: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in lists:
            many.setdefault(name, []).append(value)
        elif name in fields:
            raise BadRequest(f"The form repeats the field {name!r}; send each field once.")
        else:
            fields[name] = value
    return Form(fields, many)


async def read_form(request: Request) -> Form:
    """A FastAPI dependency: the posted form (415 unless URL-encoded, 413 over the cap)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Send the form as application/x-www-form-urlencoded.")
    max_bytes: int = request.app.state.runtime.settings.max_body_bytes
    return parse_form(await read_capped(request, max_bytes))
