"""A verified SigV4 request's body, checked as the app reads it."""

from __future__ import annotations

from typing import TypeGuard

from authgate.sigv2 import SigV2Result
from authgate.sigv4 import BodyChecker, S3Error, S3InvalidRequest, SigV4Result, body_checker

__all__ = ["BodyGuard", "has_body"]


def has_body(content_length: str | None, transfer_encoding: str | None) -> bool:
    """Whether an HTTP/1.1 request carries a body, by its framing headers."""
    if transfer_encoding is not None and "chunked" in transfer_encoding.lower():
        return True
    return content_length is not None and content_length.strip() not in ("", "0")


class BodyGuard:
    """A verified request's body checker, fed as the app reads; remembers its failure.

    ``feed(chunk, last=True)`` finishes the check before the last bytes are handed on,
    so an app never sees a complete body that does not match its signature.
    """

    __slots__ = ("_checker", "done", "error")

    def __init__(self, result: SigV4Result) -> None:
        self._checker: BodyChecker = body_checker(result)
        self.error: S3Error | None = None
        self.done = False

    @staticmethod
    def needed(result: SigV4Result | SigV2Result) -> TypeGuard[SigV4Result]:
        # SigV2 signs no body: nothing of it to check.
        return isinstance(result, SigV4Result) and result.payload_mode != "unsigned"

    def feed(self, chunk: bytes, *, last: bool) -> None:
        if self.error is not None:
            raise self.error
        if self.done:
            if chunk:
                self.error = S3InvalidRequest("Body bytes arrived after the body's end.")
                raise self.error
            return
        try:
            if chunk:
                self._checker.feed(chunk)
            if last:
                self._checker.finish()
                self.done = True
        except S3Error as exc:
            self.error = exc
            raise
