"""What the ASGI middleware does for a browser form upload (an S3 POST policy).

The policy that signs the upload is a form field, in the body, ahead of the file: so
before the gate decides, the form's fields are read (``PostForm``, bounded) and put on
the request for ``PostPolicyUploads``. The bytes read are then handed to the app
unchanged, and the rest of the body after them, each chunk fed to the same parser
first: a file that outgrows the policy's ``content-length-range`` (or a body that ends
short of its minimum, or malformed) raises before that chunk is handed on, so the store
never receives a complete body the policy does not allow. The file is never held: only
the chunks that carried the fields wait, until the gate has decided.
"""

from __future__ import annotations

from authgate.adapters.scope import Message, Receive, Scope, Send, send_error
from authgate.s3.post_form import PostForm, form_boundary
from authgate.sigv4 import S3Error

__all__ = ["FormReplay", "form_candidate", "read_form_head"]


def form_candidate(scope: Scope) -> PostForm | None:
    """A parser for a request that may be a POST policy upload, by its headers alone: a
    POST of ``multipart/form-data`` to ``/``, ``/bucket`` or ``/bucket/``, with no query
    and no credential header of any other kind."""
    if scope["method"] != "POST" or scope.get("query_string"):
        return None
    raw = scope.get("raw_path") or scope.get("path", "").encode("latin-1")
    if raw.count(b"/") > 2 or (raw.count(b"/") == 2 and not raw.endswith(b"/")):
        return None
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name in (b"authorization", b"x-api-key"):
            return None
        if name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
    if content_type is None:
        return None
    boundary = form_boundary(content_type.decode("latin-1"))
    return PostForm(boundary) if boundary is not None else None


async def read_form_head(receive: Receive, form: PostForm) -> list[Message]:
    """The messages that carried the form's fields, fed to ``form``: up to the file's
    part headers, the body's end, a refusal or ``PostForm``'s bound."""
    held: list[Message] = []
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request":
            return held
        try:
            form.feed(message.get("body", b""))
        except S3Error:
            return held
        if form.head_complete or not message.get("more_body", False):
            return held


class FormReplay:
    """The held messages, then the rest of the body; each checked by ``form`` when one
    is given (a claimed upload) before the app sees it."""

    __slots__ = ("_closes", "_form", "_held", "_method", "_receive", "_replaced")

    def __init__(
        self,
        receive: Receive,
        held: list[Message],
        form: PostForm | None,
        method: str,
        closes: bool,
    ) -> None:
        self._receive = receive
        self._held = held
        self._form = form
        self._method = method
        self._closes = closes
        self._replaced = False

    async def receive(self) -> Message:
        form = self._form
        if self._held:
            message = self._held.pop(0)
            if form is not None and message["type"] == "http.request":
                form.feed(b"")  # the size so far, now that the policy set its range
                if not message.get("more_body", False):
                    form.finish()
            return message
        message = await self._receive()
        if form is not None and message["type"] == "http.request":
            form.feed(message.get("body", b""))
            if not message.get("more_body", False):
                form.finish()
        return message

    def send(self, send: Send) -> Send:
        form = self._form
        if form is None:
            return send

        async def checked(message: Message) -> None:
            if self._replaced:
                return
            error = form.error
            if message["type"] == "http.response.start" and error is not None:
                # The app (the gateway, a store) answered a body that failed its check:
                # the client gets the check's refusal instead, and the connection ends.
                self._replaced = True
                scope = {
                    "type": "http",
                    "headers": [(b"content-length", b"1")] if self._closes else [],
                }
                await send_error(scope, send, error, method=self._method)
                return
            await send(message)

        return checked
