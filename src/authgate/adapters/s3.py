"""What the ASGI and WSGI adapters add for a SigV4 request the gate let through.

- The body is checked as the app reads it (``receive`` / ``wsgi.input`` wrapped), and
  the last bytes are handed over only once the whole body has passed; a request without
  a body is checked before the app runs. The bytes themselves are never changed.
- A failed check is answered in S3's XML whatever the app does with the exception (it
  may swallow it, or turn it into a 500): while the app's answer has not started, it is
  replaced.
- A ListBuckets answer keeps only the buckets the key has a grant on (``list_buckets =
  "filter"``). It is a few kilobytes, so it is read whole and rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from http import HTTPStatus
from typing import IO, Any, Protocol

from authgate.adapters.scope import Message, Receive, Send, send_error
from authgate.s3.access import S3Pass, render_s3
from authgate.s3.body import BodyGuard, has_body
from authgate.s3.listbuckets import ListBucketsFilterError, decode_body, filter_list_buckets
from authgate.sigv4 import S3Error

__all__ = ["AsgiS3", "GuardedInput", "WsgiS3", "status_line"]


_READ_BLOCK = 64 * 1024
_REWRITTEN = (b"content-length", b"content-encoding")


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _list_filtered(
    headers: Iterable[tuple[bytes, bytes]], body: bytes, grants: Mapping[str, str]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a ListBuckets answer with the ungranted buckets taken out."""
    encoding = None
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-encoding":
            encoding = value.decode("latin-1")
        if lower not in _REWRITTEN:
            kept.append((name, value))
    filtered = filter_list_buckets(decode_body(body, encoding), grants)
    kept.append((b"content-length", str(len(filtered)).encode()))
    return kept, filtered


class AsgiS3:
    """One SigV4 request's body check and answer fix-ups, around an ASGI app."""

    __slots__ = ("_held", "_parts", "_replaced", "closes", "guard", "list_grants", "method")

    def __init__(self, s3: S3Pass, method: str, closes: bool = False) -> None:
        self.guard = BodyGuard(s3.result) if BodyGuard.needed(s3.result) else None
        self.list_grants = s3.list_grants if method == "GET" else None
        self.method = method
        # Whether a refusal here ends the connection (see authgate.adapters.connection):
        # a body check fails before the body's end, and the rest is never read.
        self.closes = closes
        self._replaced = False
        self._held: Message | None = None
        self._parts: list[bytes] = []

    def refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> S3Error | None:
        """The error for a request whose missing body does not match its signature."""
        if self.guard is None:
            return None
        content_length = transfer_encoding = None
        for name, value in headers:
            if name == b"content-length":
                content_length = value.decode("latin-1")
            elif name == b"transfer-encoding":
                transfer_encoding = value.decode("latin-1")
        if has_body(content_length, transfer_encoding):
            return None
        try:
            self.guard.feed(b"", last=True)
        except S3Error as exc:
            return exc
        return None

    def receive(self, receive: Receive) -> Receive:
        guard = self.guard
        if guard is None:
            return receive
        # Wrapped even once an absent body has passed: a body the framing headers did
        # not announce (HTTP/2 needs none) must not reach the app unchecked.

        async def checked() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                guard.feed(message.get("body", b""), last=not message.get("more_body", False))
            return message

        return checked

    def send(self, send: Send) -> Send:
        if self.guard is None and self.list_grants is None:
            return send

        async def fixed(message: Message) -> None:
            if self._replaced:
                return
            kind = message["type"]
            if kind == "http.response.start":
                error = self.guard.error if self.guard is not None else None
                if error is not None:
                    self._replaced = True
                    await self._send_error(send, error)
                    return
                if self.list_grants is not None and message["status"] == 200:
                    self._held = message
                    return
            elif kind == "http.response.body" and self._held is not None:
                self._parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                start, self._held = self._held, None
                assert self.list_grants is not None
                try:
                    headers, body = _list_filtered(
                        start.get("headers", ()), b"".join(self._parts), self.list_grants
                    )
                except ListBucketsFilterError as exc:
                    self._replaced = True
                    await self._send_error(send, exc)
                    return
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        return fixed

    async def _send_error(self, send: Send, error: S3Error) -> None:
        # The app may have read the body by now: whether the connection ends was judged
        # from the request's framing, before the app ran.
        scope = {"type": "http", "headers": [(b"content-length", b"1")] if self.closes else []}
        await send_error(scope, send, error, method=self.method)


# -- WSGI ---------------------------------------------------------------------------------


class GuardedInput:
    """``wsgi.input`` fed through a ``BodyGuard`` as the app reads it.

    One block is read ahead, so the app is handed the final bytes only after the check
    of the whole body has passed; memory stays at what the app asks for plus one block.
    """

    def __init__(self, stream: IO[bytes], guard: BodyGuard, length: int | None) -> None:
        self._stream = stream
        self._guard = guard
        self._left = length
        self._pending = bytearray()
        self._ended = False  # even an empty body is checked, on the first read

    def _fill(self, want: int) -> None:
        while not self._ended and len(self._pending) <= want:
            size = _READ_BLOCK if self._left is None else min(_READ_BLOCK, self._left)
            chunk = self._stream.read(size) if size else b""
            if self._left is not None:
                self._left -= len(chunk)
            self._ended = not chunk or self._left == 0
            self._guard.feed(chunk, last=self._ended)
            self._pending += chunk

    def _take(self, size: int) -> bytes:
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while not self._ended:
                self._fill(len(self._pending) + _READ_BLOCK)
            return self._take(len(self._pending))
        self._fill(size)
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        scanned = 0
        while True:
            newline = self._pending.find(b"\n", scanned)
            if newline >= 0:
                end = newline + 1
                break
            if limit is not None and len(self._pending) >= limit:
                end = limit
                break
            if self._ended:
                end = len(self._pending)
                break
            scanned = len(self._pending)
            self._fill(len(self._pending) + _READ_BLOCK)
        if limit is not None:
            end = min(end, limit)
        if end == len(self._pending) and not self._ended:
            self._fill(end)  # the read-ahead byte that proves this is not the end
        return self._take(end)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = ..., /
    ) -> Callable[[bytes], object]: ...


def _ignore_write(_data: bytes) -> None:
    return None


class WsgiS3:
    """One SigV4 request's body check and answer fix-ups, around a WSGI app."""

    __slots__ = ("guard", "list_grants", "method")

    def __init__(self, s3: S3Pass, method: str) -> None:
        self.guard = BodyGuard(s3.result) if BodyGuard.needed(s3.result) else None
        self.list_grants = s3.list_grants if method == "GET" else None
        self.method = method

    def refusal(self, environ: MutableMapping[str, Any]) -> S3Error | None:
        """Checks what it can before the app runs, and wraps ``wsgi.input``."""
        guard = self.guard
        if guard is None:
            return None
        content_length = environ.get("CONTENT_LENGTH") or None
        transfer_encoding = environ.get("HTTP_TRANSFER_ENCODING")
        chunked = transfer_encoding is not None and "chunked" in transfer_encoding.lower()
        # By the framing headers alone: some servers mark every input terminated.
        if not has_body(content_length, transfer_encoding):
            try:
                guard.feed(b"", last=True)
            except S3Error as exc:
                return exc
            return None
        length = None
        if content_length is not None and not chunked:
            try:
                length = int(content_length)
            except ValueError:
                length = None
        environ["wsgi.input"] = GuardedInput(environ["wsgi.input"], guard, length)
        return None

    def call(
        self,
        app: Callable[[Any, Any], Iterable[bytes]],
        environ: MutableMapping[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        replaced: list[bytes] | None = None
        held: tuple[str, list[tuple[str, str]]] | None = None
        guard = self.guard
        grants = self.list_grants

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            nonlocal replaced, held
            if replaced is not None:
                return _ignore_write
            error = guard.error if guard is not None else None
            if error is not None:
                code, error_headers, body = render_s3(error, self.method)
                start_response(status_line(code), error_headers, exc_info)
                replaced = [body]
                return _ignore_write
            if grants is not None and status[:3] == "200":
                held = (status, headers)
                return _ignore_write
            return start_response(status, headers, exc_info)

        result = app(environ, start)
        if grants is None and replaced is None:
            if guard is None:
                return result
            return _Replaceable(result, lambda: replaced)
        try:
            body = b"".join(result)  # a ListBuckets answer, or one being replaced
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if replaced is not None:
            return replaced
        if held is None:
            return [body]
        status, headers = held
        assert grants is not None
        try:
            raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
            new_headers, filtered = _list_filtered(raw, body, grants)
        except ListBucketsFilterError as exc:
            code, error_headers, error_body = render_s3(exc, self.method)
            start_response(status_line(code), error_headers)
            return [error_body]
        start_response(status, [(n.decode("latin-1"), v.decode("latin-1")) for n, v in new_headers])
        return [filtered]


class _Replaceable:
    """The app's answer, unless a body check failed after the app chose it (the app read
    the body lazily, as it iterated): then the S3 error was already sent in its place."""

    def __init__(self, result: Iterable[bytes], replaced: Callable[[], list[bytes] | None]):
        self._result = result
        self._replaced = replaced

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            swapped = self._replaced()
            if swapped is not None:
                yield from swapped
                return
            yield chunk

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()
