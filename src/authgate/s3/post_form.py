"""A browser upload's ``multipart/form-data`` body, read once as it streams.

S3's POST object takes the form fields first and the file last; the policy that signs
the upload is one of those fields. ``PostForm`` is fed the body chunk by chunk: it keeps
the fields (bounded) until the ``file`` part's headers are in, so that the policy can be
verified before any of the file is forwarded, then counts the file's bytes without
keeping them, so that ``content-length-range`` is checked on the size that actually
arrives, before the last bytes are handed on.

The store parses the same bytes with its own parser. So anything two parsers could read
two ways is refused rather than guessed at: a repeated field (in any case), a field
after the file (S3 ignores them, werkzeug and others do not), a second file, a part with
headers other than ``Content-Disposition`` and ``Content-Type``, a ``filename*`` or a
``Content-Transfer-Encoding``, names and file names with control characters.

python-multipart does the framing (Starlette's parser; its callback API hands over each
part's headers and data slices without copying the body, and raises on bad framing).
"""

from __future__ import annotations

import re

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from authgate.sigv4 import InvalidArgument, S3Error, S3InvalidRequest

__all__ = ["MAX_FIELDS_BYTES", "EntityTooLarge", "EntityTooSmall", "PostForm", "form_boundary"]

# S3 refuses a form whose fields before the file exceed 20 KB; a little room above it.
MAX_FIELDS_BYTES = 64 * 1024
_ALLOWED_PART_HEADERS = frozenset({b"content-disposition", b"content-type"})


class EntityTooLarge(S3Error):
    s3_code = "EntityTooLarge"
    status = 400
    code = "entity_too_large"
    default_detail = "Your proposed upload exceeds the maximum allowed size"


class EntityTooSmall(S3Error):
    s3_code = "EntityTooSmall"
    status = 400
    code = "entity_too_small"
    default_detail = "Your proposed upload is smaller than the minimum allowed size"


class MaxPostPreDataLengthExceeded(S3Error):
    s3_code = "MaxPostPreDataLengthExceeded"
    status = 400
    code = "max_post_pre_data_length_exceeded"
    default_detail = "Your POST request fields preceding the upload file were too large."


def form_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type, ``None`` for any other."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 70:
        return None
    return boundary


_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _plain_disposition(value: bytes) -> bool:
    """Whether a part's ``Content-Disposition`` has one reading: each parameter once (in
    any case) and none in RFC 2231's extended form (``name*``, ``filename*0``).

    python-multipart drops extended parameters and keeps the last of a repeated one,
    while werkzeug (and so the store) reads ``name*``/``filename*`` and may keep another:
    ``name="x-ignore-a"; name*=UTF-8''key`` would be a field here and ``key`` there. No
    library reports the parameters as sent, so their names are read here, outside the
    quoted strings."""
    bare = _QUOTED.sub(b"", value)
    if b"*" in bare or b'"' in bare:
        return False
    names = [piece.partition(b"=")[0].strip().lower() for piece in bare.split(b";")[1:]]
    return all(names) and len(set(names)) == len(names)


def _clean(text: str) -> bool:
    return not any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


class PostForm:
    """One form body, fed as it arrives. ``fields`` (lower-cased names) and ``filename``
    are complete once ``head_complete``; ``file_size`` counts the file's bytes.
    ``feed`` and ``finish`` raise the ``S3Error`` that refuses the upload."""

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, str] = {}
        self.names: dict[str, str] = {}  # lower-cased -> as sent
        self.filename: str | None = None
        self.file_size = 0
        self.head_complete = False
        self.head_bytes = 0
        self.min_size = 0
        self.max_size: int | None = None
        self._ended = False
        self._file_done = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._value_parts: list[bytes] = []
        self._in_file = False
        self._error: S3Error | None = None
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # -- python-multipart's callbacks ----------------------------------------------------
    def _fail(self, error: S3Error) -> None:
        if self._error is None:
            self._error = error

    def _part_begin(self) -> None:
        if self._file_done:
            self._fail(
                InvalidArgument("Fields after the file are refused: stores read them apart.")
            )
        self._headers = []
        self._field = self._value = b""
        self._name = None
        self._value_parts = []

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        disposition = None
        for header, value in self._headers:
            if header not in _ALLOWED_PART_HEADERS:
                self._fail(InvalidArgument(f"A form part carries a {header!r} header."))
                return
            if header == b"content-disposition":
                if disposition is not None:
                    self._fail(InvalidArgument("A form part has two Content-Dispositions."))
                    return
                disposition = value
        if disposition is None:
            self._fail(InvalidArgument("A form part has no Content-Disposition."))
            return
        kind, options = parse_options_header(disposition)
        if kind != b"form-data" or not _plain_disposition(disposition):
            self._fail(InvalidArgument("A form part is not plain form-data."))
            return
        try:
            name = options.get(b"name", b"").decode("utf-8")
            filename_raw = options.get(b"filename")
            filename = filename_raw.decode("utf-8") if filename_raw is not None else None
        except UnicodeDecodeError:
            self._fail(InvalidArgument("A form part's name is not UTF-8."))
            return
        if not name or not _clean(name) or (filename is not None and not _clean(filename)):
            self._fail(InvalidArgument("A form part's name is empty or has control characters."))
            return
        lower = name.lower()
        if lower in self.names:
            self._fail(InvalidArgument(f"The form field {name!r} is repeated."))
            return
        self.names[lower] = name
        if lower == "file":
            self.filename = filename or ""
            self._in_file = True
            self.head_complete = True
        elif filename is not None:
            self._fail(InvalidArgument("Only the field named 'file' may carry a file."))
        else:
            self._name = lower

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.file_size += end - start
        elif self._name is not None:
            self._value_parts.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True
            return
        if self._name is None:
            return
        try:
            self.fields[self._name] = b"".join(self._value_parts).decode("utf-8")
        except UnicodeDecodeError:
            self._fail(InvalidArgument(f"The form field {self._name!r} is not UTF-8."))
        self._name = None

    def _end(self) -> None:
        self._ended = True

    # -- what the adapters call ---------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if not self.head_complete:
            self.head_bytes += len(chunk)
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self._fail(S3InvalidRequest("The form body is not well-formed multipart data."))
        if self.max_size is not None and self.file_size > self.max_size:
            self._fail(
                EntityTooLarge(
                    extra={
                        "ProposedSize": str(self.file_size),
                        "MaxSizeAllowed": str(self.max_size),
                    }
                )
            )
        if self._error is not None:
            raise self._error
        if not self.head_complete and self.head_bytes > MAX_FIELDS_BYTES:
            self._fail(MaxPostPreDataLengthExceeded())
            raise self._error  # type: ignore[misc]

    def finish(self) -> None:
        """The body has ended: it must have been whole, and the file within its range."""
        if self._error is not None:
            raise self._error
        if not self._ended or not self._file_done:
            self._fail(S3InvalidRequest("The form body ended before its closing boundary."))
        elif self.file_size < self.min_size:
            self._fail(
                EntityTooSmall(
                    extra={
                        "ProposedSize": str(self.file_size),
                        "MinSizeAllowed": str(self.min_size),
                    }
                )
            )
        if self._error is not None:
            raise self._error

    @property
    def error(self) -> S3Error | None:
        return self._error
